export const render = () => "xml";
