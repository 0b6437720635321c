import { serve } from "https://deno.land/std@0.168.0/http/server.ts";
import { createClient } from "npm:@supabase/supabase-js@2";
import { assert } from "jsr:@std/assert@1";
import { Buffer } from "node:buffer";
import data from "data:application/javascript,export default 1";
serve(() => new Response(String([createClient, assert, Buffer, data])));
