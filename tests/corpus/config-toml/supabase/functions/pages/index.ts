const page = await Deno.readTextFile(new URL("./templates/home.html", import.meta.url));
Deno.serve(() => new Response(page, { headers: { "content-type": "text/html" } }));
