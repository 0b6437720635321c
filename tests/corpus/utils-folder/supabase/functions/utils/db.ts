import { format } from "../lib/format.ts";
export const query = (sql: string) => format(sql);
