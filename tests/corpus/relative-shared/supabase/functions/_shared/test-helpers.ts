export const fakeRequest = () => new Request("http://localhost/");
