/**
 * Issue #22 item 5 in the reliability table: the webviews stay local. The checks live with the other Chromium tests
 * (test/webview/stayLocal.test.ts, where `npm run test:webview` runs them); importing that file here runs the same
 * tests under `npm run test:stress`, so its STRESS rows (requests recorded, remote requests, injected remote URLs
 * caught) reach the table. Short and full runs are the same: every view once, ~10 s.
 */
import '../webview/stayLocal.test';
