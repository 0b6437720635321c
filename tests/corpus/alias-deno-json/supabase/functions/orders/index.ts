import { check } from "@shared/auth.ts";
import { STATUS_CODE } from "@std/http/status";
import { ZodError } from "zod/v4";
Deno.serve(() => new Response(String(check()), { status: STATUS_CODE.OK }));
void ZodError;
