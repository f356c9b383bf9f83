/**
 * How many cases the property and fuzz suites try. `npm test` (CI, 2 cores) runs the small figure;
 * `npm run test:deep` sets PAYPLANE_DEEP=1 for the large one, to hunt rarer failures off CI.
 */
export const runs = (ci: number, deep: number): number => (process.env.PAYPLANE_DEEP === '1' ? deep : ci);
