import { corsHeaders } from "../_shared/cors.ts";
export const headers = corsHeaders;
