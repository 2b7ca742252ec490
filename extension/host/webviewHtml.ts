/**
 * The HTML of Headlight's webviews: a strict CSP (no remote anything; scripts only with this render's nonce;
 * styles only from the extension's media folder and the components' constructed stylesheets), one script, our
 * CSS. No `vscode` import, so the webview tests render the same page.
 */
/**
 * The stylesheets of each webview, files of media/, in cascade order (the host links them; the webview tests serve
 * the same). Every view's CSS lives in these files: the CSP admits no inline style elements.
 */
export const VIEW_STYLES = {
  panel: ['webview.css', 'panel.css', 'insideHead.css', 'compare.css', 'lens.css', 'attribution.css', 'patch.css'],
  sidebar: ['webview.css', 'sidebar.css', 'attribution.css'],
} as const satisfies Record<string, readonly string[]>;

export type ViewEntry = keyof typeof VIEW_STYLES;

export interface WebviewPage {
  /** `webview.cspSource` (in tests: the harness origin). */
  cspSource: string;
  /** Fresh per render (crypto.randomBytes on the host). */
  nonce: string;
  scriptUri: string;
  styleUris: string[];
  title: string;
  bodyClass?: string;
}

export function webviewHtml(p: WebviewPage): string {
  const csp = [
    "default-src 'none'",
    // no data: or blob: images: canvases are drawn from pixels and exported with toBlob, which loads no URL
    `img-src ${p.cspSource}`,
    `style-src ${p.cspSource} 'nonce-${p.nonce}'`,
    `font-src ${p.cspSource}`,
    `script-src 'nonce-${p.nonce}'`,
  ].join('; ');
  const attr = (s: string) => s.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;');
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="UTF-8">
<meta http-equiv="Content-Security-Policy" content="${attr(csp)}">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
${p.styleUris.map((u) => `<link rel="stylesheet" nonce="${p.nonce}" href="${attr(u)}">`).join('\n')}
<title>${attr(p.title)}</title>
</head>
<body class="${attr(p.bodyClass ?? '')}">
<script nonce="${p.nonce}" src="${attr(p.scriptUri)}"></script>
</body>
</html>`;
}
