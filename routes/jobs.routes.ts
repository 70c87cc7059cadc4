import { createRoute, z } from "@hono/zod-openapi";
import { problem } from "./problem.ts";
import { Cursor, ItemStateQuery, Job, JobItemPage, Limit } from "./schemas.ts";

const JobIdParam = z.object({
  id: z.string().min(1).max(64).openapi({
    param: { name: "id", in: "path" },
    example: "01KAQ4Z3T7V6B6XG5N3W2R8M9C",
  }),
});

export const getJob = createRoute({
  method: "get",
  path: "/jobs/{id}",
  tags: ["Jobs"],
  summary: "Progress of a job",
  request: { params: JobIdParam },
  responses: {
    200: {
      description: "The job and its counts.",
      content: { "application/json": { schema: Job } },
    },
    404: problem("No job has this id."),
  },
});

export const listJobItems = createRoute({
  method: "get",
  path: "/jobs/{id}/items",
  tags: ["Jobs"],
  summary: "The URLs of a job and their states",
  description: "Pages through the job's URLs in submission order. Failed URLs carry a `reason`.",
  request: {
    params: JobIdParam,
    query: z.object({
      state: ItemStateQuery.optional().openapi({ description: "Only URLs in this state." }),
      limit: Limit(100, 1000),
      cursor: Cursor,
    }),
  },
  responses: {
    200: {
      description: "One page of items.",
      content: { "application/json": { schema: JobItemPage } },
    },
    400: problem("A query parameter is invalid (including an unknown cursor)."),
    404: problem("No job has this id."),
  },
});

export type GetJobRoute = typeof getJob;
export type ListJobItemsRoute = typeof listJobItems;
