export const render = () => "pdf";
