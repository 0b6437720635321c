declare const ENV: string;
