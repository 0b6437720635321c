Deno.serve(() => new Response("router"));
