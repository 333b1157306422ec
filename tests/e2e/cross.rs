//! The ARM builds (`make cross`): each binary runs under qemu-user on this machine with the CPU
//! of the oldest board it claims, serves the page and the client bundle, chats with the official
//! client over WebSocket and over polling, and keeps its messages across a restart. Run by
//! `make test` through `make test-cross`, which builds them first; ignored by a plain
//! `cargo test`.

use std::process::Command;

use crate::common::{self, Gateway, js_script, node, repo, scratch_dir};

/// One ARM build: where `make cross` puts it and how qemu-user runs it.
struct ArmBuild {
    name: &'static str,
    target: &'static str,
    emulator: &'static str,
    /// The core of the oldest board this binary is for.
    cpu: &'static str,
}

#[test]
#[ignore = "needs the aarch64 build and qemu-user: run `make test-cross`"]
fn aarch64_binary_chats_on_a_cortex_a53() {
    chats_under_qemu(&ArmBuild {
        name: "aarch64",
        target: "aarch64-unknown-linux-gnu",
        emulator: "qemu-aarch64",
        cpu: "cortex-a53",
    });
}

#[test]
#[ignore = "needs the armv7 build and qemu-user: run `make test-cross`"]
fn armv7_binary_chats_on_a_cortex_a7() {
    chats_under_qemu(&ArmBuild {
        name: "armv7",
        target: "armv7-unknown-linux-gnueabihf",
        emulator: "qemu-arm",
        cpu: "cortex-a7",
    });
}

#[test]
#[ignore = "needs the armv6 build and qemu-user: run `make test-cross`"]
fn armv6_binary_chats_on_an_arm1176() {
    chats_under_qemu(&ArmBuild {
        name: "armv6",
        target: "arm-unknown-linux-musleabihf",
        emulator: "qemu-arm",
        cpu: "arm1176",
    });
}

fn chats_under_qemu(build: &ArmBuild) {
    let binary = repo()
        .join("target")
        .join(build.target)
        .join("release/emberchat");
    assert!(
        binary.exists(),
        "{} is missing: run `make cross-{}`",
        binary.display(),
        build.name
    );
    let emulated = || {
        let mut qemu = Command::new(build.emulator);
        // The guest's memory in a 4 GiB range of its own, apart from qemu's, so that what the
        // binary itself keeps resident can be read from /proc (guest_rss_kib). A 32-bit guest
        // has that range already; a 64-bit one is confined to it (-R).
        qemu.args(["-cpu", build.cpu, "-B", &format!("{GUEST_BASE:#x}")]);
        if build.emulator == "qemu-aarch64" {
            qemu.args(["-R", &format!("{GUEST_SIZE:#x}")]);
        }
        qemu.arg(&binary);
        qemu
    };
    let dir = scratch_dir(&format!("qemu-{}", build.name));
    let db = dir.join("chat.db");

    let gateway = Gateway::start_command(emulated(), dir.clone(), &db, &[]);
    let idle = guest_rss_kib(gateway.pid());
    let page = common::get(&gateway, "/");
    assert_eq!(page.status, 200);
    assert!(page.text().contains("<form"), "not the chat page");
    let bundle = common::get(&gateway, "/socket.io/socket.io.js");
    assert_eq!(bundle.status, 200);
    assert!(bundle.text().contains("Socket.IO"), "not the client bundle");
    for transport in ["websocket", "polling"] {
        gateway.run_client(
            &node(),
            &[&js_script("chat_roundtrip.mjs"), &gateway.url, transport],
        );
    }
    let before = stored(&gateway);
    // Three messages per transport, each with its own id.
    assert_eq!(before.len(), 6, "{before:?}");
    // For the README's table ("Run it on a Raspberry Pi"), labelled as emulated there.
    println!(
        "{} under {} -cpu {}: guest RSS {idle} KiB idle, {} KiB after the chats \
         (the qemu process: {} KiB)",
        build.name,
        build.emulator,
        build.cpu,
        guest_rss_kib(gateway.pid()),
        common::status_kib(&gateway, "VmRSS")
    );
    let status = gateway.stop();
    assert!(status.success(), "{status}");

    let restarted = Gateway::start_command(emulated(), dir, &db, &[]);
    assert_eq!(
        stored(&restarted),
        before,
        "the restart lost or changed messages"
    );
    let status = restarted.stop();
    assert!(status.success(), "{status}");
}

/// Where qemu-user puts the guest's memory (`-B`) and how much it reserves for it (`-R`).
const GUEST_BASE: u64 = 0x2000_0000_0000;
const GUEST_SIZE: u64 = 0x1_0000_0000;

/// The resident memory of the emulated binary: qemu's process minus qemu itself, that is the
/// mappings inside the guest's range (the binary's pages, its heap, stacks and SQLite's
/// shared memory file).
fn guest_rss_kib(pid: u32) -> u64 {
    let smaps = std::fs::read_to_string(format!("/proc/{pid}/smaps")).expect("read smaps");
    let mut total = 0;
    let mut inside = false;
    for line in smaps.lines() {
        let range = line.split_whitespace().next().unwrap_or("");
        if let Some((start, _)) = range.split_once('-')
            && let Ok(start) = u64::from_str_radix(start, 16)
        {
            inside = (GUEST_BASE..GUEST_BASE + GUEST_SIZE).contains(&start);
        } else if inside && let Some(kib) = line.strip_prefix("Rss:") {
            total += kib
                .trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<u64>()
                .unwrap_or(0);
        }
    }
    assert!(total > 0, "no guest mapping in qemu's smaps");
    total
}

/// Every stored message, as the official client replays it from offset 0: `[[id, text], …]`.
fn stored(gateway: &Gateway) -> Vec<(i64, String)> {
    let output = gateway.run_client(&node(), &[&js_script("collect.mjs"), &gateway.url, "500"]);
    let line = output
        .lines()
        .rev()
        .find(|l| l.starts_with('['))
        .expect("collect.mjs prints a JSON line");
    crate::delivery::parse_pairs(line)
}
