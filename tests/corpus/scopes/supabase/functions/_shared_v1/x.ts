export const x = () => "v1";
