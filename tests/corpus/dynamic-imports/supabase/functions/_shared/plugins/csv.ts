export const render = () => "csv";
