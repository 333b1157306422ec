//! The chat page in headless Chromium: a message typed in one page appears in another.

mod common;

use common::{Gateway, js_script, node, scratch_dir};

#[test]
fn two_pages_chat() {
    let gateway = Gateway::start("browser", &[]);
    let script = js_script("browser_chat.mjs");
    let shot = scratch_dir("browser-shot").join("page.png");
    gateway.run_client(
        &node(),
        &[&script, &gateway.url, &shot.display().to_string()],
    );
    assert!(shot.exists(), "no screenshot taken");
}
