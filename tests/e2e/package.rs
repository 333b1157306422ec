//! The Debian packages (`make deb`): what each holds, and the amd64 package installed,
//! upgraded, removed and purged with dpkg. dpkg works on a scratch root (`--root`), with the
//! maintainer scripts run outside a chroot and given that root in `$DPKG_ROOT`, the way
//! Debian installs into another root; the machine's own packages are left alone. Run by
//! `make test` through `make test-packages`, which builds them first.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::common::{self, Gateway, repo, scratch_dir};

const VERSION: &str = env!("CARGO_PKG_VERSION");

/// One package `make deb` builds, and the binary it must carry.
struct Package {
    name: &'static str,
    arch: &'static str,
    binary: &'static str,
    /// The ELF e_machine of that binary.
    machine: u16,
}

const PACKAGES: [Package; 4] = [
    Package {
        name: "emberchat",
        arch: "amd64",
        binary: "x86_64-unknown-linux-gnu",
        machine: 62,
    },
    Package {
        name: "emberchat",
        arch: "arm64",
        binary: "aarch64-unknown-linux-gnu",
        machine: 183,
    },
    Package {
        name: "emberchat",
        arch: "armhf",
        binary: "armv7-unknown-linux-gnueabihf",
        machine: 40,
    },
    Package {
        name: "emberchat-armv6",
        arch: "armhf",
        binary: "arm-unknown-linux-musleabihf",
        machine: 40,
    },
];

/// Every file each package installs (directories aside).
const FILES: [&str; 9] = [
    "/etc/default/emberchat",
    "/usr/bin/emberchat",
    "/usr/lib/systemd/system/emberchat-backup.service",
    "/usr/lib/systemd/system/emberchat-backup.timer",
    "/usr/lib/systemd/system/emberchat.service",
    "/usr/lib/systemd/system/emberchat.socket",
    "/usr/share/doc/PACKAGE/README.md.gz",
    "/usr/share/doc/PACKAGE/copyright",
    // postinst writes it to /etc/avahi/services where Avahi is.
    "/usr/share/emberchat/avahi/emberchat.service",
];

impl Package {
    fn file(&self) -> PathBuf {
        repo().join(format!(
            "target/deb/{}_{VERSION}_{}.deb",
            self.name, self.arch
        ))
    }
}

fn run(command: &mut Command) -> Output {
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("{command:?}: {e}"));
    assert!(
        output.status.success(),
        "{command:?} failed ({}):\n{}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn stdout(command: &mut Command) -> String {
    String::from_utf8(run(command).stdout).unwrap()
}

fn field(deb: &Path, name: &str) -> String {
    stdout(Command::new("dpkg-deb").arg("--field").arg(deb).arg(name))
        .trim()
        .to_owned()
}

#[test]
#[ignore = "needs the packages of `make deb`: run `make test-packages`"]
fn each_package_holds_its_binary_the_units_and_the_settings() {
    for package in &PACKAGES {
        let deb = package.file();
        assert!(deb.exists(), "{} is missing: run `make deb`", deb.display());
        let info = stdout(Command::new("dpkg-deb").arg("--info").arg(&deb));
        println!("{}\n{info}", deb.display());
        assert_eq!(field(&deb, "Package"), package.name);
        assert_eq!(field(&deb, "Version"), VERSION);
        assert_eq!(field(&deb, "Architecture"), package.arch);
        assert!(field(&deb, "Depends").is_empty(), "the binary is static");
        let conffiles = stdout(
            Command::new("dpkg-deb")
                .arg("--info")
                .arg(&deb)
                .arg("conffiles"),
        );
        assert_eq!(conffiles.trim(), "/etc/default/emberchat");
        for script in ["postinst", "prerm", "postrm"] {
            assert!(info.contains(&format!(" {script} ")), "no {script}");
        }
        match (package.name, package.arch) {
            ("emberchat", "armhf") => {
                assert!(info.contains(" preinst "), "the ARMv7 check");
                assert_eq!(field(&deb, "Conflicts"), "emberchat-armv6");
            }
            ("emberchat-armv6", _) => {
                assert_eq!(field(&deb, "Provides"), "emberchat");
                assert_eq!(field(&deb, "Replaces"), "emberchat");
            }
            _ => assert!(!info.contains(" preinst ")),
        }

        let contents = stdout(Command::new("dpkg-deb").arg("--contents").arg(&deb));
        let files: BTreeSet<String> = contents
            .lines()
            .filter(|line| !line.starts_with('d'))
            .filter_map(|line| line.split_whitespace().last())
            .map(|path| path.trim_start_matches('.').to_owned())
            .collect();
        let expected: BTreeSet<String> = FILES
            .iter()
            .map(|path| path.replace("PACKAGE", package.name))
            .collect();
        assert_eq!(files, expected, "{contents}");
        assert!(
            contents.lines().all(|line| line.contains(" root/root ")),
            "owned by root: {contents}"
        );

        let unpacked = scratch_dir(&format!("deb-{}-{}", package.name, package.arch));
        run(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&unpacked));
        let binary = std::fs::read(unpacked.join("usr/bin/emberchat")).unwrap();
        let built = repo()
            .join("target")
            .join(package.binary)
            .join("release/emberchat");
        assert!(
            binary == std::fs::read(&built).unwrap(),
            "{} does not carry {}",
            deb.display(),
            built.display()
        );
        assert_eq!(
            u16::from_le_bytes([binary[18], binary[19]]),
            package.machine
        );
        let service =
            std::fs::read_to_string(unpacked.join("usr/lib/systemd/system/emberchat.service"))
                .unwrap();
        assert!(service.contains("\nExecStart=/usr/bin/emberchat\n"));
        let backup = std::fs::read_to_string(
            unpacked.join("usr/lib/systemd/system/emberchat-backup.service"),
        )
        .unwrap();
        assert!(backup.contains("exec /usr/bin/emberchat backup"));
        assert!(!backup.contains("/usr/local"));
        assert_eq!(
            std::fs::read(unpacked.join("etc/default/emberchat")).unwrap(),
            std::fs::read(repo().join("cross/systemd/emberchat.env")).unwrap()
        );
    }
}

/// A scratch root that dpkg installs into: its database, the base units systemd's tools need
/// to load the package's (copied from this machine), a shell for `ExecStart=/bin/sh`, and the
/// directories a Debian system has before any package of ours (with Avahi when `avahi`).
fn dpkg_root(name: &str, avahi: bool) -> PathBuf {
    let root = scratch_dir(name);
    for dir in [
        "var/lib/dpkg/info",
        "var/lib/dpkg/updates",
        "var/lib/dpkg/triggers",
        "usr/lib/systemd/system",
        "etc/systemd/system/multi-user.target.wants",
        "etc/systemd/system/sockets.target.wants",
        "etc/systemd/system/timers.target.wants",
        "bin",
        "var/lib",
    ] {
        std::fs::create_dir_all(root.join(dir)).unwrap();
    }
    std::fs::write(root.join("var/lib/dpkg/status"), "").unwrap();
    if avahi {
        std::fs::create_dir_all(root.join("etc/avahi/services")).unwrap();
    }
    for entry in std::fs::read_dir("/usr/lib/systemd/system").unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_owned();
        if name.ends_with(".target") || name.ends_with(".slice") {
            let to = root.join("usr/lib/systemd/system").join(&name);
            match std::fs::read_link(&path) {
                Ok(link) => std::os::unix::fs::symlink(link, to).unwrap(),
                Err(_) => {
                    std::fs::copy(&path, to).unwrap();
                }
            }
        }
    }
    std::fs::copy("/bin/sh", root.join("bin/sh")).unwrap();
    root
}

/// dpkg on the scratch root, its maintainer scripts run with `$DPKG_ROOT`.
fn dpkg(root: &Path, args: &[&str]) -> String {
    stdout(
        Command::new("dpkg")
            .arg(format!("--root={}", root.display()))
            .arg("--force-script-chrootless")
            .args(args),
    )
}

fn status(root: &Path, package: &str) -> String {
    let output = Command::new("dpkg-query")
        .arg(format!(
            "--admindir={}",
            root.join("var/lib/dpkg").display()
        ))
        .args(["-W", "-f", "${Version} ${db:Status-Abbrev}", package])
        .output()
        .unwrap();
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

/// Every path under `root` except dpkg's own database.
fn tree(root: &Path) -> BTreeSet<String> {
    fn walk(root: &Path, dir: &Path, paths: &mut BTreeSet<String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let relative = path.strip_prefix(root).unwrap().display().to_string();
            if relative == "var/lib/dpkg" {
                continue;
            }
            let is_dir = path.symlink_metadata().unwrap().is_dir();
            paths.insert(relative);
            if is_dir {
                walk(root, &path, paths);
            }
        }
    }
    let mut paths = BTreeSet::new();
    walk(root, root, &mut paths);
    paths
}

fn verify_units(root: &Path) {
    common::assert_units_verify(root, &[format!("--root={}", root.display())]);
}

#[test]
#[ignore = "needs root, dpkg and the packages of `make deb`: run `make test-packages`"]
fn amd64_package_installs_upgrades_removes_and_purges() {
    let deb = PACKAGES[0].file();
    assert!(deb.exists(), "{} is missing: run `make deb`", deb.display());
    let root = dpkg_root("dpkg-root", true);
    let system = tree(&root);

    // Install: everything in place, the units loadable, Avahi told, nothing enabled.
    println!("{}", dpkg(&root, &["--install", deb.to_str().unwrap()]));
    assert_eq!(status(&root, "emberchat"), format!("{VERSION} ii"));
    verify_units(&root);
    let announcement =
        std::fs::read_to_string(root.join("etc/avahi/services/emberchat.service")).unwrap();
    assert!(announcement.contains("<name replace-wildcards=\"yes\">emberchat on %h</name>"));
    assert!(announcement.contains("<type>_http._tcp</type>"));
    assert!(announcement.contains("<port>3000</port>"));
    let installed = tree(&root);
    assert!(
        installed
            .iter()
            .filter(|path| path.starts_with("etc/systemd/system/"))
            .all(|path| system.contains(path)),
        "the package enabled a unit"
    );
    let version = stdout(Command::new(root.join("usr/bin/emberchat")).arg("--version"));
    assert_eq!(version.trim(), format!("emberchat {VERSION}"));

    // The installed binary keeps a chat where the service would (StateDirectory with
    // DynamicUser: /var/lib/private/emberchat, and the link /var/lib/emberchat).
    let data = root.join("var/lib/private/emberchat");
    std::fs::create_dir_all(&data).unwrap();
    std::os::unix::fs::symlink("private/emberchat", root.join("var/lib/emberchat")).unwrap();
    let db = data.join("chat.db");
    let gateway = Gateway::start_command(
        Command::new(root.join("usr/bin/emberchat")),
        scratch_dir("dpkg-gateway"),
        &db,
        &[],
    );
    assert_eq!(common::get(&gateway, "/").status, 200);
    assert!(gateway.stop().success());
    let chat: BTreeSet<String> = tree(&root)
        .into_iter()
        .filter(|path| path.starts_with("var/lib/private") || path == "var/lib/emberchat")
        .collect();
    assert!(
        chat.contains("var/lib/private/emberchat/chat.db"),
        "{chat:?}"
    );

    // The admin's choices: another port, the service and the nightly backup enabled.
    let settings = root.join("etc/default/emberchat");
    let mut edited = std::fs::read_to_string(&settings).unwrap();
    edited.push_str("EMBERCHAT_LISTEN=0.0.0.0:8080\n");
    std::fs::write(&settings, &edited).unwrap();
    run(Command::new("systemctl")
        .arg(format!("--root={}", root.display()))
        .args(["enable", "emberchat.service", "emberchat-backup.timer"]));
    let enabled = [
        "etc/systemd/system/multi-user.target.wants/emberchat.service",
        "etc/systemd/system/timers.target.wants/emberchat-backup.timer",
    ];

    // Upgrade to a newer build: the edited conffile kept as it is, the announcement on the
    // new port, the admin's links kept.
    let newer = format!("{VERSION}+upgrade1");
    let newer_dir = scratch_dir("deb-newer");
    run(Command::new(repo().join("cross/deb/build.sh"))
        .arg(repo().join("target/x86_64-unknown-linux-gnu/release/emberchat"))
        .args(["amd64", &newer])
        .arg(&newer_dir));
    let newer_deb = newer_dir.join(format!("emberchat_{newer}_amd64.deb"));
    println!(
        "{}",
        dpkg(
            &root,
            &["--force-confold", "--install", newer_deb.to_str().unwrap()]
        )
    );
    assert_eq!(status(&root, "emberchat"), format!("{newer} ii"));
    assert_eq!(std::fs::read_to_string(&settings).unwrap(), edited);
    assert!(!root.join("etc/default/emberchat.dpkg-dist").exists());
    assert!(!root.join("etc/default/emberchat.dpkg-new").exists());
    let announcement =
        std::fs::read_to_string(root.join("etc/avahi/services/emberchat.service")).unwrap();
    assert!(announcement.contains("<port>8080</port>"), "{announcement}");
    for link in enabled {
        assert!(root.join(link).symlink_metadata().is_ok(), "{link} lost");
    }
    verify_units(&root);

    // Remove: the program, units and announcement gone; the settings and the chat stay.
    println!("{}", dpkg(&root, &["--remove", "emberchat"]));
    assert_eq!(status(&root, "emberchat"), format!("{newer} rc"));
    for gone in [
        "usr/bin/emberchat",
        "usr/lib/systemd/system/emberchat.service",
        "etc/avahi/services/emberchat.service",
        "usr/share/emberchat",
    ] {
        assert!(!root.join(gone).exists(), "{gone} left after remove");
    }
    assert_eq!(std::fs::read_to_string(&settings).unwrap(), edited);
    assert!(db.exists());

    // Purge: nothing left but the chat (README, "Install the package").
    println!("{}", dpkg(&root, &["--purge", "emberchat"]));
    assert_eq!(status(&root, "emberchat"), "");
    let left: BTreeSet<String> = tree(&root).difference(&system).cloned().collect();
    assert_eq!(left, chat, "purge left more than the chat");
}

#[test]
#[ignore = "needs root, dpkg and the packages of `make deb`: run `make test-packages`"]
fn without_avahi_nothing_is_announced_and_purge_leaves_the_system_as_it_was() {
    let deb = PACKAGES[0].file();
    assert!(deb.exists(), "{} is missing: run `make deb`", deb.display());
    let root = dpkg_root("dpkg-root-plain", false);
    let system = tree(&root);
    dpkg(&root, &["--install", deb.to_str().unwrap()]);
    assert!(!root.join("etc/avahi").exists(), "made Avahi's folder");
    dpkg(&root, &["--purge", "emberchat"]);
    assert_eq!(tree(&root), system);
}

#[test]
fn the_armv7_package_refuses_an_armv6_processor() {
    // dpkg calls armhf both ARMv6 and ARMv7; the preinst tells them apart by `uname -m`,
    // which is given here as each board's kernel reports it.
    let dir = scratch_dir("preinst");
    for (machine, allowed) in [("armv6l", false), ("armv7l", true), ("aarch64", true)] {
        let uname = dir.join("uname");
        std::fs::write(&uname, format!("#!/bin/sh\necho {machine}\n")).unwrap();
        run(Command::new("chmod").arg("755").arg(&uname));
        let output = Command::new("sh")
            .arg(repo().join("cross/deb/preinst-armv7"))
            .arg("install")
            .env("PATH", format!("{}:/usr/bin:/bin", dir.display()))
            .env_remove("DPKG_ROOT")
            .output()
            .unwrap();
        let said = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.success(), allowed, "{machine}: {said}");
        if !allowed {
            assert!(
                said.contains("install the emberchat-armv6 package"),
                "{said}"
            );
        }
    }
}
