// Bundle the browser code into service/web/static/dist/ (git-ignored; `make setup` rebuilds it).
import { build } from 'esbuild';

await build({
  entryPoints: {
    viewer: 'src/viewer.js', modeler: 'src/modeler.js', dashboard: 'src/dashboard.js', watchlist: 'src/watchlist.js',
  },
  outdir: '../service/web/static/dist',
  bundle: true,
  minify: true,
  sourcemap: true,
  format: 'iife',
  target: ['es2020'],
  legalComments: 'linked',
  loader: { '.woff': 'file', '.woff2': 'file', '.ttf': 'file', '.eot': 'file', '.svg': 'file' },
  assetNames: 'assets/[name]-[hash]',
  logLevel: 'info',
});
