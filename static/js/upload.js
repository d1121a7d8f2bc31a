// The upload tab: choose or drop files, group the files of one shot (IMG_1.jpg, IMG_1.CR2,
// IMG_1.CR2.xmp) into one request so the server pairs them as one photo, and show each file's progress
// and result. Two shots travel at a time; a large RAW streams to the server's disk, never its memory.
"use strict";

(() => {
  const form = document.getElementById("upload-form");
  if (!form) return;
  const input = document.getElementById("files");
  const drop = document.getElementById("drop");
  const queue = document.getElementById("queue");
  const start = document.getElementById("start");
  const overall = document.getElementById("overall");
  const summary = document.getElementById("summary");
  const config = JSON.parse(document.getElementById("upload-config").textContent);
  const PARALLEL = 2;

  // The server's rule (photoflow.filetypes: display_name, pair_key, hinted_kind), applied to the same
  // data, which the page hands over: extensions by kind, Pixel's pattern, the longest name, and the
  // characters where Python's casefold differs from toLowerCase (ß, ς, ligatures...).
  const names = config.names;
  const kinds = new Map();
  for (const [kind, extensions] of Object.entries(names.extensions)) {
    for (const extension of extensions) kinds.set(extension, kind);
  }
  const described = new Set([...names.extensions.picture, ...names.extensions.raw]);
  const sidecars = new Set(names.extensions.sidecar);
  const phonePair = new RegExp(names.phonePair, "i");
  const folds = new Map(Object.entries(names.caseFolds));
  const fold = (text) => Array.from(text, (ch) => folds.get(ch) ?? ch.toLowerCase()).join("");

  function split(name) {
    const dot = name.lastIndexOf(".");
    return dot <= 0 ? [name, ""] : [name.slice(0, dot), name.slice(dot).toLowerCase()];
  }

  // display_name: the name without folders and without what Python calls unprintable, bounded.
  const UNPRINTABLE = /[\p{Cc}\p{Cf}\p{Cs}\p{Co}\p{Cn}\p{Zl}\p{Zp}\p{Zs}]/u;
  function shown(name) {
    const chars = Array.from(name.split(/[\\/]/).pop());
    const kept = chars.filter((ch) => ch === " " || !UNPRINTABLE.test(ch));
    return kept.slice(0, names.maxName).join("").replace(/^ +| +$/g, "") || "unnamed";
  }

  // IMG_1.CR2.xmp, IMG_1.CR2, IMG_1.xmp and img_1.jpg all give img_1: one request, one photo.
  function pairKey(name) {
    let [stem, ext] = split(shown(name));
    if (sidecars.has(ext)) {
      const [inner, innerExt] = split(stem);
      if (described.has(innerExt)) stem = inner;
    }
    return fold(stem.replace(phonePair, ""));
  }

  // "picture", "raw", "sidecar", or "" for an extension the table does not know (a hint only).
  const kindOf = (name) => kinds.get(split(shown(name))[1]) || "";

  // Within a request: pictures first, then RAWs (and the unknown), then sidecars.
  const RANK = { picture: 0, raw: 1, sidecar: 2 };
  const rank = (file) => RANK[kindOf(file.name)] ?? 1;

  // For tests/test_formats.py, which runs this code beside the server's.
  window.Photoflow.upload = { pairKey, kindOf, rank: (name) => rank({ name }) };

  const items = []; // {file, row, bar, status, sent}
  const seen = new Set();

  function human(bytes) {
    if (bytes >= 1e9) return `${(bytes / 1e9).toFixed(1)} GB`;
    if (bytes >= 1e6) return `${(bytes / 1e6).toFixed(1)} MB`;
    if (bytes >= 1e3) return `${(bytes / 1e3).toFixed(0)} kB`;
    return `${bytes} bytes`;
  }

  function add(files) {
    for (const file of files) {
      const key = `${file.name}:${file.size}:${file.lastModified}`;
      if (seen.has(key)) continue;
      seen.add(key);
      const row = document.createElement("li");
      row.className = "queued";
      const name = document.createElement("span");
      name.className = "name";
      name.textContent = file.name;
      const size = document.createElement("span");
      size.className = "size muted";
      size.textContent = human(file.size);
      const bar = document.createElement("progress");
      bar.max = Math.max(1, file.size);
      bar.value = 0;
      const status = document.createElement("span");
      status.className = "status";
      status.textContent = file.size > config.maxBytes ? "too large" : "waiting";
      row.append(name, size, bar, status);
      queue.appendChild(row);
      items.push({ file, row, bar, status, sent: 0, done: false });
    }
    start.disabled = !items.some((item) => !item.done);
    summary.textContent = `${items.length} ${items.length === 1 ? "file" : "files"} chosen`;
  }

  input.addEventListener("change", () => add(input.files));
  for (const type of ["dragenter", "dragover"]) {
    drop.addEventListener(type, (event) => {
      event.preventDefault();
      drop.classList.add("over");
    });
  }
  for (const type of ["dragleave", "drop"]) {
    drop.addEventListener(type, () => drop.classList.remove("over"));
  }
  drop.addEventListener("drop", (event) => {
    event.preventDefault();
    add(event.dataTransfer.files);
  });

  if (config.preselect) {
    const option = form.querySelector(`#album option[value="${config.preselect}"]`);
    if (option) {
      option.selected = true;
      form.querySelector('input[name="target"][value="existing"]').checked = true;
    }
  }

  async function targetAlbum() {
    const target = form.querySelector('input[name="target"]:checked').value;
    if (target === "existing") return form.querySelector("#album").value;
    if (target !== "new") return "";
    const title = document.getElementById("new-title").value.trim();
    if (!title) throw new Error("Give the new album a title.");
    const body = new URLSearchParams({ title, public: document.getElementById("new-public").checked ? "1" : "0" });
    const answer = await fetch(`${window.Photoflow.root()}/api/albums`, {
      method: "POST",
      body,
      headers: { "X-CSRF-Token": window.Photoflow.csrf(), Accept: "application/json" },
      credentials: "same-origin",
    });
    const data = await answer.json();
    if (!answer.ok) throw new Error(data.error || `HTTP ${answer.status}`);
    // The album exists now: later batches go into it too.
    const select = form.querySelector("#album");
    const option = new Option(data.title, data.id, true, true);
    select.add(option);
    form.querySelector('input[name="target"][value="existing"]').disabled = false;
    form.querySelector('input[name="target"][value="existing"]').checked = true;
    document.getElementById("new-title").value = "";
    return String(data.id);
  }

  const words = { imported: "imported", duplicate: "already here", attached: "attached", failed: "failed" };

  function show(item, result) {
    item.done = true;
    item.row.className = result.status;
    item.bar.value = item.bar.max;
    const word = words[result.status] || result.status;
    // A duplicate's reason ("already imported") only repeats its word.
    item.status.textContent = result.reason && result.status !== "duplicate" ? `${word}: ${result.reason}` : word;
  }

  function send(group, album) {
    return new Promise((resolve) => {
      const body = new FormData();
      for (const item of group) body.append("file", item.file, item.file.name);
      const xhr = new XMLHttpRequest();
      xhr.open("POST", `${window.Photoflow.root()}/upload${album ? `?album=${encodeURIComponent(album)}` : ""}`);
      xhr.setRequestHeader("X-CSRF-Token", window.Photoflow.csrf());
      xhr.setRequestHeader("Accept", "application/json");
      for (const item of group) item.status.textContent = "uploading";
      xhr.upload.addEventListener("progress", (event) => {
        // The files travel in order: spread the bytes sent over them.
        let left = event.loaded;
        for (const item of group) {
          item.sent = Math.min(item.file.size, Math.max(0, left));
          item.bar.value = item.sent;
          left -= item.file.size;
          if (item.sent >= item.file.size) item.status.textContent = "processing";
        }
        progress();
      });
      const fail = (reason) => {
        for (const item of group) if (!item.done) show(item, { status: "failed", reason });
        resolve();
      };
      xhr.addEventListener("load", () => {
        let data = null;
        try {
          data = JSON.parse(xhr.responseText);
        } catch (error) {
          fail(`the server answered ${xhr.status}`);
          return;
        }
        // 422: every file of the group was refused, each with its own reason in `results`.
        if (!(xhr.status === 200 || (xhr.status === 422 && Array.isArray(data.results)))) {
          fail(data.error || `the server answered ${xhr.status}`);
          return;
        }
        const left = [...group];
        for (const result of data.results) {
          const at = left.findIndex((item) => item.file.name === result.name);
          show(at >= 0 ? left.splice(at, 1)[0] : left.shift(), result);
        }
        for (const item of left) show(item, { status: "failed", reason: "no answer for this file" });
        resolve();
      });
      xhr.addEventListener("error", () => fail("the connection failed"));
      xhr.addEventListener("abort", () => fail("cancelled"));
      xhr.send(body);
    });
  }

  function progress() {
    const total = items.reduce((sum, item) => sum + item.file.size, 0) || 1;
    const sent = items.reduce((sum, item) => sum + (item.done ? item.file.size : item.sent), 0);
    overall.value = sent / total;
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const todo = items.filter((item) => !item.done);
    if (!todo.length) return;
    start.disabled = true;
    let album = "";
    try {
      album = await targetAlbum();
    } catch (error) {
      summary.textContent = error.message;
      start.disabled = false;
      return;
    }
    overall.hidden = false;
    const groups = new Map();
    for (const item of todo) {
      if (item.file.size > config.maxBytes) {
        show(item, { status: "failed", reason: "larger than the server accepts" });
        continue;
      }
      const key = pairKey(item.file.name);
      if (!groups.has(key)) groups.set(key, []);
      groups.get(key).push(item);
    }
    const pending = [...groups.values()].map((group) => group.sort((a, b) => rank(a.file) - rank(b.file)));
    const workers = Array.from({ length: PARALLEL }, async () => {
      while (pending.length) await send(pending.shift(), album);
    });
    await Promise.all(workers);
    progress();
    const count = (status) => items.filter((item) => item.row.className === status).length;
    summary.textContent = `${count("imported")} imported, ${count("duplicate")} already here, ` +
      `${count("attached")} attached, ${count("failed")} failed`;
    // Somewhere to go only when something arrived (nothing to see when every file was refused).
    if (items.some((item) => ["imported", "duplicate", "attached"].includes(item.row.className))) {
      const link = document.createElement("a");
      link.href = `${window.Photoflow.root()}${album ? `/album/${album}` : "/"}`;
      link.textContent = album ? "Open the album" : "See them";
      link.className = "after-upload";
      summary.append(" · ", link);
    }
    start.disabled = !items.some((item) => !item.done);
  });
})();
