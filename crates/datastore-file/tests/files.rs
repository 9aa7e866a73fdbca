//! The file datastore on a real directory: initial load, edits, a file that stops parsing,
//! deletion, duplicates across files.

use std::{fs, path::Path};

use alp_datastore::Event;
use alp_datastore_file::FileDatastore;

fn ns(name: &str, team: &str) -> String {
    format!("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {name}\n  labels: {{team: {team}}}\n")
}

fn summary(events: &[Event]) -> Vec<String> {
    events.iter().map(|e| e.summary(|r| r.name().to_owned(), |k| k.name.clone())).collect()
}

fn write(dir: &Path, name: &str, text: &str) {
    // Distinct lengths make the change visible even within one mtime tick.
    fs::write(dir.join(name), text).unwrap();
}

#[test]
fn loads_edits_and_keeps_last_good_content() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "a.yaml", &format!("{}---\n{}", ns("a1", "x"), ns("a2", "x")));
    fs::create_dir(dir.path().join("sub")).unwrap();
    write(&dir.path().join("sub"), "b.json", r#"{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"b1"}}"#);
    write(dir.path(), "notes.txt", "ignored");
    let mut ds = FileDatastore::new(dir.path());
    let scan = ds.rescan();
    assert_eq!(summary(&scan.events), ["apply a1", "apply a2", "apply b1"]);
    assert!(scan.errors.is_empty());
    assert!(ds.rescan().events.is_empty(), "nothing changed");

    // a.yaml breaks: its resources stay, the error names file and document; b is untouched.
    write(
        dir.path(),
        "a.yaml",
        &format!(
            "{}---\napiVersion: projectcalico.org/v3\nkind: NetworkPolicy\nmetadata: {{name: p, namespace: a1}}\nspec: {{selector: \"app ==\"}}\n",
            ns("a1", "yy")
        ),
    );
    let scan = ds.rescan();
    assert_eq!(summary(&scan.events), ["apply a1"], "the good document applies, a2 stays");
    let err = scan.errors[0].to_string();
    assert!(err.contains("a.yaml") && err.contains("document 2"), "{err}");
    assert_eq!(ds.view().len(), 3);

    // Fixed: now a2's removal is real.
    write(dir.path(), "a.yaml", &ns("a1", "zzz"));
    assert_eq!(summary(&ds.rescan().events), ["delete a2", "apply a1"]);

    fs::remove_file(dir.path().join("sub/b.json")).unwrap();
    assert_eq!(summary(&ds.rescan().events), ["delete b1"]);
}

#[tokio::test]
async fn watch_streams_initial_content_then_changes() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "a.yaml", &ns("a1", "x"));
    let (tx, mut rx) = tokio::sync::mpsc::channel(16);
    let shutdown = tokio_util::sync::CancellationToken::new();
    let config =
        alp_datastore_file::Config { dir: dir.path().to_owned(), poll_interval: std::time::Duration::from_millis(20) };
    let (task, _connected) = alp_datastore_tokio::spawn_watch(config, tx, shutdown.clone());
    assert_eq!(summary(&[rx.recv().await.unwrap(), rx.recv().await.unwrap()]), ["apply a1", "init-done"]);
    write(dir.path(), "b.yaml", &ns("b1", "x"));
    let next = tokio::time::timeout(std::time::Duration::from_secs(5), rx.recv()).await.unwrap().unwrap();
    assert_eq!(summary(&[next]), ["apply b1"]);
    shutdown.cancel();
    task.await.unwrap();
}

#[test]
fn a_key_in_two_files_comes_from_the_later_one() {
    let dir = tempfile::tempdir().unwrap();
    let team = |events: &[Event]| -> Vec<String> {
        events
            .iter()
            .map(|e| match e {
                Event::Apply(r) => format!("apply {} {}", r.name(), r.metadata().labels["team"]),
                other => summary(std::slice::from_ref(other)).remove(0),
            })
            .collect()
    };
    write(dir.path(), "a.yaml", &ns("x", "a"));
    write(dir.path(), "b.yaml", &ns("x", "b"));
    let mut ds = FileDatastore::new(dir.path());
    assert_eq!(team(&ds.rescan().events), ["apply x b"]);

    fs::remove_file(dir.path().join("b.yaml")).unwrap();
    assert_eq!(team(&ds.rescan().events), ["apply x a"], "falls back to the earlier file");
    write(dir.path(), "b.yaml", &ns("x", "bb"));
    assert_eq!(team(&ds.rescan().events), ["apply x bb"]);
    fs::remove_file(dir.path().join("a.yaml")).unwrap();
    assert!(ds.rescan().events.is_empty(), "the winner did not change");
    write(dir.path(), "a.yaml", &ns("x", "aaa"));
    assert!(ds.rescan().events.is_empty(), "an earlier file does not win");
    fs::remove_file(dir.path().join("b.yaml")).unwrap();
    assert_eq!(team(&ds.rescan().events), ["apply x aaa"]);
    fs::remove_file(dir.path().join("a.yaml")).unwrap();
    assert_eq!(team(&ds.rescan().events), ["delete x"]);
}

#[test]
fn a_file_found_empty_right_after_a_write_is_looked_at_again() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "a.yaml", &format!("{}---\n{}", ns("a1", "x"), ns("a2", "x")));
    let mut ds = FileDatastore::new(dir.path());
    assert_eq!(summary(&ds.rescan().events), ["apply a1", "apply a2"]);

    // Truncated by an in-place write: nothing is deleted yet.
    write(dir.path(), "a.yaml", "");
    assert!(ds.rescan().events.is_empty(), "an empty file just written is not taken at its word");
    // The write completes.
    write(dir.path(), "a.yaml", &ns("a1", "y"));
    assert_eq!(summary(&ds.rescan().events), ["delete a2", "apply a1"]);

    // Emptied for good: once it has stayed empty for the grace period, its resources go.
    write(dir.path(), "a.yaml", "");
    assert!(ds.rescan().events.is_empty());
    let old = std::time::SystemTime::now() - alp_datastore_file::EMPTY_GRACE * 2;
    fs::File::options().write(true).open(dir.path().join("a.yaml")).unwrap().set_modified(old).unwrap();
    assert_eq!(summary(&ds.rescan().events), ["delete a1"]);
}
