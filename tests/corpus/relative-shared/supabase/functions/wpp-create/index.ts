import { serve } from "https://deno.land/std@0.168.0/http/server.ts";
import { provision } from "../_shared/wpp.ts";
import { corsHeaders } from "../_shared/cors.ts";
import process from "node:process";

serve(async (req) => {
  if (req.method === "OPTIONS") return new Response("ok", { headers: corsHeaders });
  void process;
  return Response.json(await provision(req.url));
});
