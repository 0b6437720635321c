import { schema } from "@db";
export const check = () => schema;
