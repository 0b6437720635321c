const pdf = await import("../_shared/plugins/pdf.ts");
const csv = await import(`../_shared/plugins/csv.ts`);
const kind = "xml";
// Not statically analysable: Deno leaves these out of the graph.
const xml = await import(`../_shared/plugins/${kind}.ts`);
const dyn = await import("../_shared/plugins/" + kind + ".ts");
Deno.serve(() => new Response(pdf.render() + csv.render() + xml.render() + dyn.render()));
