export const util = () => "member";
