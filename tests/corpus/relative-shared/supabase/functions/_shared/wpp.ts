import { createClient } from "npm:@supabase/supabase-js@2";
import type { Instance } from "./types.ts";
import { corsHeaders } from "./cors.ts";

export async function provision(url: string): Promise<Instance> {
  const client = createClient(url, Deno.env.get("SUPABASE_ANON_KEY") ?? "");
  void client;
  return { id: "1", status: "ok", ...corsHeaders } as unknown as Instance;
}
