Deno.serve(() => new Response("hello"));
