//! The dump and restore scripts the backup and restore Jobs run, executed for real with `bash`
//! (what the Jobs run them with) and stand-in `mysqldump`, `mysql`, `clickhouse-client` and
//! `aws` executables on PATH that record their arguments and produce output (`aws s3` keeps its
//! bucket in a directory). The backups mount (`/backups`) and `/tmp` are redirected into a
//! scratch directory.

use std::fs;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use wandb_engine::ServiceKind;
use wandb_engine::backends::managed::backup::{self, MOUNT};
use wandb_engine::backends::managed::backup_store;

/// A scratch directory with `backups/`, `tmp/`, `bin/` (the stubs) and `calls` (their log).
struct Sandbox {
    root: PathBuf,
}

impl Sandbox {
    fn new(test: &str) -> Self {
        let root =
            std::env::temp_dir().join(format!("wandb-scripts-{}-{test}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        for d in ["backups", "tmp", "bin", "s3"] {
            fs::create_dir_all(root.join(d)).unwrap();
        }
        let sb = Sandbox { root };
        // Each stub logs `name args...` and, for the clients, the config file it was given
        // (the password must reach the client through it, never argv).
        sb.stub(
            "mysqldump",
            r#"echo "mysqldump $*" >> "$CALLS"
grep -q "password=$MYSQL_ROOT_PASSWORD" /dev/stdin < "${1#--defaults-extra-file=}" || { echo "no password in config" >&2; exit 9; }
echo "CREATE DATABASE wandb_local; -- dump"
if [ -n "${FAIL:-}" ]; then echo "mysqldump: Got error: 2013: Lost connection" >&2; exit 2; fi"#,
        );
        sb.stub(
            "mysql",
            r#"echo "mysql $*" >> "$CALLS"
cat > "$LOADED""#,
        );
        sb.stub(
            "clickhouse-client",
            r#"echo "clickhouse-client $*" >> "$CALLS"
q=""; prev=""; for a in "$@"; do [ "$prev" = --query ] && q="$a"; prev="$a"; done
case "$q" in
  *"engine NOT LIKE"*) printf 'events\nruns\n' ;;
  *"FROM system.tables"*) printf 'events\nruns\nruns_view\n' ;;
  "SHOW CREATE TABLE"*) echo "CREATE TABLE ${q#SHOW CREATE TABLE } (x UInt8) ENGINE = MergeTree ORDER BY x" ;;
  "SELECT * FROM"*) if [ -n "${FAIL:-}" ]; then exit 81; fi; echo "native:$q" ;;
  *) cat >> "$LOADED" ;;
esac"#,
        );
        sb.stub(
            "aws",
            r#"echo "aws $*" >> "$CALLS"
[ "$1" = --endpoint-url ] && [ "$2" = "$S3_ENDPOINT" ] || { echo "wrong endpoint" >&2; exit 3; }
[ -n "$AWS_ACCESS_KEY_ID" ] && [ -n "$AWS_SECRET_ACCESS_KEY" ] || { echo "no credentials" >&2; exit 3; }
grep -q '^  addressing_style = path$' "$AWS_CONFIG_FILE" || { echo "virtual-hosted addressing" >&2; exit 3; }
shift 2
[ "$1" = s3 ] || exit 3
op=$2; shift 2
args=(); for a in "$@"; do [ "$a" = --only-show-errors ] || args+=("$a"); done
p() { echo "$S3ROOT/${1#s3://}"; }
case $op in
  cp)
    if [[ ${args[0]} == s3://* ]]; then
      s=$(p "${args[0]}"); [ -f "$s" ] || { echo "fatal error: 404 $s" >&2; exit 1; }; cp "$s" "${args[1]}"
    else
      if [ -n "${S3FAIL:-}" ]; then echo "upload failed: 403" >&2; exit 1; fi
      d=$(p "${args[1]}"); mkdir -p "$(dirname "$d")"; cp "${args[0]}" "$d"
    fi ;;
  ls) d=$(p "${args[0]}"); [ -d "$d" ] || exit 1
    for f in "$d"*; do [ -f "$f" ] && echo "$(date -r "$f" '+%Y-%m-%d %H:%M:%S') $(stat -c %s "$f") $(basename "$f")"; done; true ;;
  rm) rm "$(p "${args[0]}")" ;;
  *) exit 3 ;;
esac"#,
        );
        sb
    }

    fn stub(&self, name: &str, body: &str) {
        let path = self.root.join("bin").join(name);
        fs::write(&path, format!("#!/usr/bin/env bash\nset -e\n{body}\n")).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
    }

    /// The script with `/backups` and `/tmp` moved into the sandbox.
    fn localize(&self, script: &str) -> String {
        // `/tmp` first: the sandbox itself may live under it.
        script
            .replace("/tmp/", &format!("{}/", self.path("tmp").display()))
            // Only where a script sets its local path (`dir=`, `file=`, `src=`): the object
            // keys hold `backups/` too.
            .replace(
                &format!("={MOUNT}/"),
                &format!("={}/", self.path("backups").display()),
            )
    }

    fn path(&self, p: &str) -> PathBuf {
        self.root.join(p)
    }

    fn run(&self, script: &str, env: &[(&str, &str)]) -> Output {
        let path = format!(
            "{}:{}",
            self.path("bin").display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let mut cmd = Command::new("bash");
        cmd.arg("-c")
            .arg(self.localize(script))
            .env("PATH", path)
            .env("CALLS", self.path("calls"))
            .env("LOADED", self.path("loaded"))
            .env("S3ROOT", self.path("s3"))
            .env("S3_ENDPOINT", "http://w-objectstore:8333")
            .env("BUCKET", "wandb")
            .env("AWS_ACCESS_KEY_ID", "ak")
            .env("AWS_SECRET_ACCESS_KEY", "sk")
            .env("MYSQL_ROOT_PASSWORD", "s3cretRoot")
            .env("CLICKHOUSE_PASSWORD", "s3cretCh");
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.output().unwrap()
    }

    fn calls(&self) -> String {
        fs::read_to_string(self.path("calls")).unwrap_or_default()
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.root);
    }
}

fn files(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .map(|d| {
            d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

fn gunzip(path: &Path) -> String {
    let out = Command::new("gunzip").arg("-c").arg(path).output().unwrap();
    String::from_utf8(out.stdout).unwrap()
}

const FILE: &str = "0.79.0-0.84.0-20261206T210000Z.sql.gz";

#[test]
fn the_mysql_dump_writes_a_named_file_with_its_checksum_and_keeps_the_last_n() {
    let sb = Sandbox::new("mysql-dump");
    let dir = sb.path("backups/w/mysql-default");
    fs::create_dir_all(&dir).unwrap();
    // Three older dumps: with keep 2, the newest old one and the new one stay.
    for (i, day) in ["2026-01-01", "2026-02-01", "2026-03-01"]
        .iter()
        .enumerate()
    {
        let f = format!("0.7{i}.0-0.79.0-x.sql.gz");
        for name in [f.clone(), format!("{f}.sha256")] {
            fs::write(dir.join(&name), "old").unwrap();
            let touched = Command::new("touch")
                .args(["-d", day])
                .arg(dir.join(&name))
                .status()
                .unwrap();
            assert!(touched.success());
        }
    }
    let script = backup::dump_script(ServiceKind::Mysql, "w-mysql", "w/mysql-default", 2);
    let out = sb.run(&script, &[("BACKUP_FILE", FILE)]);
    assert!(out.status.success(), "{out:?}");

    assert_eq!(
        files(&dir),
        [
            "0.72.0-0.79.0-x.sql.gz",
            "0.72.0-0.79.0-x.sql.gz.sha256",
            FILE,
            &format!("{FILE}.sha256"),
        ]
    );
    assert_eq!(
        gunzip(&dir.join(FILE)),
        "CREATE DATABASE wandb_local; -- dump\n"
    );
    // The checksum file verifies with `sha256sum -c` from the dump's directory.
    let check = Command::new("sha256sum")
        .arg("-c")
        .arg(format!("{FILE}.sha256"))
        .current_dir(&dir)
        .output()
        .unwrap();
    assert!(check.status.success(), "{check:?}");
    let calls = sb.calls();
    assert!(
        calls.contains("--host=w-mysql --port=3306 --user=root --single-transaction")
            && calls.contains("--databases wandb_local"),
        "{calls}"
    );
    assert!(
        !calls.contains("s3cretRoot"),
        "no password in argv: {calls}"
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(&format!(
            "backup written: {}/w/mysql-default/{FILE}",
            sb.path("backups").display()
        )),
        "{out:?}"
    );
}

#[test]
fn a_failing_mysqldump_fails_the_job_and_leaves_no_dump() {
    let sb = Sandbox::new("mysql-fail");
    let script = backup::dump_script(ServiceKind::Mysql, "w-mysql", "w/mysql-default", 5);
    let out = sb.run(&script, &[("BACKUP_FILE", FILE), ("FAIL", "1")]);
    // mysqldump fails inside `mysqldump | gzip`: pipefail makes the script fail.
    assert!(!out.status.success(), "{out:?}");
    let dir = sb.path("backups/w/mysql-default");
    let visible: Vec<String> = files(&dir)
        .into_iter()
        .filter(|f| !f.starts_with('.'))
        .collect();
    assert!(visible.is_empty(), "no dump nor checksum: {visible:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("Lost connection"));
}

#[test]
fn the_mysql_restore_checks_the_checksum_before_loading() {
    let sb = Sandbox::new("mysql-restore");
    let dump = backup::dump_script(ServiceKind::Mysql, "w-mysql", "w/mysql-default", 5);
    assert!(sb.run(&dump, &[("BACKUP_FILE", FILE)]).status.success());
    let location = format!("w/mysql-default/{FILE}");
    let restore = backup::restore_script(ServiceKind::Mysql, "w-mysql", &location);

    let out = sb.run(&restore, &[]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        fs::read_to_string(sb.path("loaded")).unwrap(),
        "CREATE DATABASE wandb_local; -- dump\n"
    );
    assert!(sb.calls().contains("mysql --defaults-extra-file="));

    // A corrupted dump: refused before anything is loaded.
    fs::remove_file(sb.path("loaded")).unwrap();
    fs::write(sb.path("calls"), "").unwrap();
    let path = sb.path("backups").join(&location);
    let mut bytes = fs::read(&path).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    fs::write(&path, bytes).unwrap();
    let out = sb.run(&restore, &[]);
    assert!(!out.status.success(), "{out:?}");
    assert!(!sb.path("loaded").exists(), "nothing loaded");
    assert!(!sb.calls().contains("mysql "), "{}", sb.calls());
    // A missing checksum file is refused too.
    fs::remove_file(sb.path("backups").join(format!("{location}.sha256"))).unwrap();
    assert!(!sb.run(&restore, &[]).status.success());
}

#[test]
fn the_clickhouse_dump_and_restore_round_trip() {
    let sb = Sandbox::new("clickhouse");
    let file = "0.79.0-0.84.0-20261206T210000Z.tar.gz";
    let dump = backup::dump_script(
        ServiceKind::Clickhouse,
        "w-clickhouse",
        "w/clickhouse-default",
        5,
    );
    let out = sb.run(&dump, &[("BACKUP_FILE", file)]);
    assert!(out.status.success(), "{out:?}");
    let dir = sb.path("backups/w/clickhouse-default");
    assert_eq!(files(&dir), [file.to_string(), format!("{file}.sha256")]);
    let listing = Command::new("tar")
        .arg("-tzf")
        .arg(dir.join(file))
        .output()
        .unwrap();
    let mut entries: Vec<String> = String::from_utf8(listing.stdout)
        .unwrap()
        .lines()
        .map(|l| l.trim_start_matches("./").to_string())
        .filter(|l| !l.is_empty())
        .collect();
    entries.sort();
    // Every table's schema, data only of tables (not views).
    assert_eq!(
        entries,
        [
            "events.native",
            "events.sql",
            "runs.native",
            "runs.sql",
            "runs_view.sql"
        ]
    );
    let calls = sb.calls();
    assert!(
        calls.contains("--host w-clickhouse --port 9000 --database weave"),
        "{calls}"
    );
    assert!(!calls.contains("s3cretCh"), "no password in argv");
    let config = fs::read_to_string(sb.path("tmp/client.xml")).unwrap();
    assert!(config.contains("<password>s3cretCh</password>"), "{config}");

    // Restore: drops, re-creates and fills every table after the checksum passed.
    fs::write(sb.path("calls"), "").unwrap();
    let location = format!("w/clickhouse-default/{file}");
    let restore = backup::restore_script(ServiceKind::Clickhouse, "w-clickhouse", &location);
    let out = sb.run(&restore, &[]);
    assert!(out.status.success(), "{out:?}");
    let calls = sb.calls();
    for q in [
        "DROP TABLE IF EXISTS `events` SYNC",
        "INSERT INTO `runs` FORMAT Native",
    ] {
        assert!(calls.contains(q), "{q} in {calls}");
    }
    let loaded = fs::read_to_string(sb.path("loaded")).unwrap();
    assert!(
        loaded.contains("CREATE TABLE `runs_view`")
            && loaded.contains("native:SELECT * FROM `events`"),
        "{loaded}"
    );

    // A failing table export fails the dump.
    let out = sb.run(
        &dump,
        &[("BACKUP_FILE", "0.84.0-0.85.0-x.tar.gz"), ("FAIL", "1")],
    );
    assert!(!out.status.success(), "{out:?}");
    assert!(!dir.join("0.84.0-0.85.0-x.tar.gz").exists());
}

#[test]
fn the_object_store_upload_keeps_the_last_n_and_the_restore_downloads_and_checks() {
    let sb = Sandbox::new("s3");
    let bucket_dir = sb.path("s3/wandb/backups/w/mysql-default");
    fs::create_dir_all(&bucket_dir).unwrap();
    for (i, day) in ["2026-01-01", "2026-02-01", "2026-03-01"]
        .iter()
        .enumerate()
    {
        let f = format!("0.7{i}.0-0.79.0-x.sql.gz");
        for name in [f.clone(), format!("{f}.sha256")] {
            fs::write(bucket_dir.join(&name), "old").unwrap();
            let touched = Command::new("touch")
                .args(["-d", day])
                .arg(bucket_dir.join(&name))
                .status()
                .unwrap();
            assert!(touched.success());
        }
    }
    let dump = backup::dump_script(ServiceKind::Mysql, "w-mysql", "w/mysql-default", 2);
    let upload = backup_store::upload_script(MOUNT, "w/mysql-default", 2);
    assert!(sb.run(&dump, &[("BACKUP_FILE", FILE)]).status.success());
    let out = sb.run(&upload, &[("BACKUP_FILE", FILE)]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        files(&bucket_dir),
        [
            "0.72.0-0.79.0-x.sql.gz",
            "0.72.0-0.79.0-x.sql.gz.sha256",
            FILE,
            &format!("{FILE}.sha256"),
        ]
    );
    // The dump before its checksum: a dump without one is incomplete and never restored.
    let calls = sb.calls();
    let at = |s: &str| calls.find(s).unwrap_or_else(|| panic!("{s} in {calls}"));
    assert!(
        at(&format!("s3://wandb/backups/w/mysql-default/{FILE}\n"))
            < at(&format!("s3://wandb/backups/w/mysql-default/{FILE}.sha256"))
    );
    assert!(!calls.contains("sk"), "no secret in argv: {calls}");

    // A failing upload fails the Job.
    let failed = sb.run(&upload, &[("BACKUP_FILE", FILE), ("S3FAIL", "1")]);
    assert!(!failed.status.success());
    assert!(String::from_utf8_lossy(&failed.stderr).contains("403"));

    // Restore in a fresh pod: download, then the checked load.
    fs::remove_dir_all(sb.path("backups")).unwrap();
    fs::create_dir_all(sb.path("backups")).unwrap();
    let rel = format!("w/mysql-default/{FILE}");
    let download = backup_store::download_script(MOUNT, &rel);
    let restore = backup::restore_script(ServiceKind::Mysql, "w-mysql", &rel);
    let out = sb.run(&download, &[]);
    assert!(out.status.success(), "{out:?}");
    assert!(sb.run(&restore, &[]).status.success());
    assert_eq!(
        fs::read_to_string(sb.path("loaded")).unwrap(),
        "CREATE DATABASE wandb_local; -- dump\n"
    );
    // Without its checksum in the bucket the download fails: nothing is loaded.
    fs::remove_file(bucket_dir.join(format!("{FILE}.sha256"))).unwrap();
    fs::remove_file(sb.path("loaded")).unwrap();
    fs::remove_dir_all(sb.path("backups")).unwrap();
    fs::create_dir_all(sb.path("backups")).unwrap();
    assert!(!sb.run(&download, &[]).status.success());
    assert!(!sb.run(&restore, &[]).status.success());
    assert!(!sb.path("loaded").exists());
}
