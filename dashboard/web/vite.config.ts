import { defineConfig } from 'vite';

/**
 * The dashboard page: `npm run build:web` builds it into dashboard/web/dist, which the order
 * service serves at GET / (dashboard/src/page.ts). There is no dev server to run.
 */
export default defineConfig({
  base: '/',
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    target: 'es2022',
    reportCompressedSize: false,
    // One small script and one stylesheet; nothing inlined, so the page's CSP can stay 'self'.
    assetsInlineLimit: 0,
  },
});
