/** RapiDoc's self-contained browser build, imported as text (esbuild: `with { type: 'text' }`) to serve as is. */
declare module 'rapidoc/dist/rapidoc-min.js' {
  const source: string;
  export default source;
}
