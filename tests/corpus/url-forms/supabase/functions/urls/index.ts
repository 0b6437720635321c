import { spaced } from "../_shared/my%20module.ts";
import { unicode } from "../_shared/ünï.ts";
import { v } from "../_shared/versioned.ts?v=2";
import { v as v2 } from "../_shared/versioned.ts#frag";
import { b } from "./../_shared/./a/../a/b.ts";
Deno.serve(() => new Response(String([spaced, unicode, v, v2, b])));
