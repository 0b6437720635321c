import { json } from "./respond.ts";
export const handle = (data: unknown) => json(data);
