// The justified grids, drawn by pig.js (npm "pig.js" 0.2.1, used as published, not forked).
//
// The gallery is a timeline: month headings, and a day heading with its own Pig instance for every day,
// as Google Photos lays it out. The page carries the newest photos inline, so the first rows draw at
// once; the timeline (days and counts) comes next, as placeholders of about the right height, and each
// day's photos are fetched when it comes near the viewport. A library of 100,000 photos opens as fast
// as one of 100, and days far off screen are parked so that scrolling costs the same everywhere.
//
// Working around pig.js 0.2.1:
// - no click option: clicks are delegated from the grid to the figure, matched to its image;
// - thumbnails are sized by window width alone: getImageSize here also counts devicePixelRatio;
// - it injects a <style> element, which the Content-Security-Policy refuses: it is dropped as it is
//   added, and photoflow.css carries the same rules;
// - it needs every aspect ratio up front: one instance per day keeps each one small;
// - disable() switches off resizing for every instance: days are parked by hand instead.
"use strict";

(() => {
  const base = window.Photoflow.base();
  // From the page (photoflow.urls and photoflow.imaging): the derivative URL's shape, with {size}, {id}
  // and {sha} to fill in, the grid heights pig.js may choose from, and the blurred placeholder's.
  const config = JSON.parse(document.getElementById("grid-config").textContent);
  const SIZES = config.heights;
  const GAP = 4;
  const BATCH = 400; // photos per request for days coming into view
  const NO_DATE = "undated";

  // Denser than pig.js's defaults (2, 4, 5, 6): closer to Google Photos' rows of 5 or 6 on a laptop.
  const minAspectRatio = (width) => (width <= 640 ? 2.5 : width <= 1280 ? 5 : width <= 1920 ? 6 : 7);

  // A row is about as wide as the window and holds at least minAspectRatio of picture, so its height
  // is at most width / minAspectRatio CSS pixels; a HiDPI screen shows that many times its ratio.
  function imageSize(windowWidth) {
    const needed = (windowWidth / minAspectRatio(windowWidth)) * (window.devicePixelRatio || 1);
    return SIZES.find((size) => size >= needed) || SIZES[SIZES.length - 1];
  }

  function options(containerId) {
    return {
      containerId,
      classPrefix: "pf",
      figureTagName: "figure",
      spaceBetweenImages: GAP,
      transitionSpeed: 300,
      primaryImageBufferHeight: 1200,
      secondaryImageBufferHeight: 400,
      thumbnailSize: config.placeholder,
      urlForSize: (filename, size) => {
        const [id, sha] = filename.split("-");
        return base + config.derivative.replace("{size}", size).replace("{id}", id).replace("{sha}", sha);
      },
      getMinAspectRatio: minAspectRatio,
      getImageSize: imageSize,
    };
  }

  function makePig(entries, container) {
    const head = document.head;
    const append = head.appendChild;
    head.appendChild = function (node) {
      return node.tagName === "STYLE" ? node : append.call(this, node);
    };
    try {
      const images = entries.map(([id, sha, ratio]) => ({ filename: `${id}-${sha}`, aspectRatio: ratio }));
      images.push({ filename: "", aspectRatio: 1 });
      container.pig = new window.Pig(images, options(container.id));
    } finally {
      delete head.appendChild;
    }
    fillLastRow(container.pig);
    return container.pig.enable();
  }

  // pig.js stretches the last row across the whole width, so a day's lone last photo would be drawn
  // huge. An invisible last image takes up the rest of that row instead: its aspect ratio is whatever
  // the row lacks at the current window width, and it never puts anything on the page.
  function fillLastRow(pig) {
    const filler = pig.images[pig.images.length - 1];
    const real = pig.images.slice(0, -1);
    filler.filler = true;
    filler.load = () => {};
    filler.hide = () => {};
    Object.defineProperty(filler, "aspectRatio", {
      get() {
        const min = minAspectRatio(window.innerWidth);
        let row = 0;
        for (const image of real) {
          row += image.aspectRatio;
          if (row >= min) row = 0;
        }
        // A full last row: the filler makes a row of its own, a few pixels high.
        return row === 0 ? 1e6 : min - row;
      },
    });
  }

  function photoUrl(figure) {
    const holder = figure.parentElement;
    const pig = holder && holder.pig;
    const image = pig && pig.images.find((candidate) => candidate.element === figure);
    if (!image || image.filler) return null;
    const id = image.filename.split("-")[0];
    const album = holder.dataset.album && !window.Photoflow.shared() ? `?album=${holder.dataset.album}` : "";
    return `${base}/photo/${id}${album}`;
  }

  function onClick(event) {
    const figure = event.target.closest("figure.pf-figure");
    const url = figure && photoUrl(figure);
    if (url) window.location.assign(url);
  }

  // -- an album: one grid ---------------------------------------------------------------------------

  const albumGrid = document.getElementById("album-grid");
  if (albumGrid) {
    const entries = JSON.parse(document.getElementById("album-photos").textContent);
    if (entries.length) makePig(entries, albumGrid);
    albumGrid.addEventListener("click", onClick);
  }

  // -- the timeline ---------------------------------------------------------------------------------

  const timeline = document.getElementById("timeline");
  if (!timeline) return;
  timeline.addEventListener("click", onClick);

  const locale = document.documentElement.lang || undefined;
  const thisYear = new Date().getFullYear();
  const monthFormat = new Intl.DateTimeFormat(locale, { month: "long", year: "numeric" });
  const dayFormat = new Intl.DateTimeFormat(locale, { weekday: "short", day: "numeric", month: "short" });
  const dayYearFormat = new Intl.DateTimeFormat(locale, { weekday: "short", day: "numeric", month: "short", year: "numeric" });
  const asDate = (day) => new Date(`${day}T12:00:00`);

  function dayTitle(day) {
    if (day === NO_DATE) return "Date unknown";
    const date = asDate(day);
    return (date.getFullYear() === thisYear ? dayFormat : dayYearFormat).format(date);
  }

  const days = new Map(); // day -> {section, grid, count, loaded, state}
  let lastMonth = null;

  function addDay(day, count) {
    const month = day === NO_DATE ? NO_DATE : day.slice(0, 7);
    if (month !== lastMonth) {
      const heading = document.createElement("h2");
      heading.className = "month-head";
      heading.textContent = month === NO_DATE ? "Without a date" : monthFormat.format(asDate(`${month}-15`));
      timeline.appendChild(heading);
      lastMonth = month;
    }
    const section = document.createElement("section");
    section.className = "day";
    section.dataset.day = day;
    const heading = document.createElement("h3");
    heading.className = "day-head";
    heading.textContent = dayTitle(day);
    const grid = document.createElement("div");
    grid.className = "pig-grid";
    grid.id = `day-${day}`;
    section.append(heading, grid);
    timeline.appendChild(section);
    const state = { day, section, grid, count, loaded: 0, state: "placeholder" };
    days.set(day, state);
    return state;
  }

  function estimate(count) {
    const width = timeline.clientWidth || window.innerWidth;
    const ratio = minAspectRatio(window.innerWidth);
    const rows = Math.max(1, Math.ceil((count * 1.45) / (ratio + 0.7)));
    return Math.round(rows * (width / (ratio + 0.7) + GAP));
  }

  function fill(state, entries) {
    state.grid.style.height = "";
    state.grid.classList.remove("placeholder");
    state.loaded = entries.length;
    state.state = "ready";
    makePig(entries, state.grid);
    placeholders.unobserve(state.section);
    parking.observe(state.section);
  }

  // Days coming within a few screens get their photos, a batch of neighbouring days per request.
  const wanted = new Set();
  let fetching = false;
  const placeholders = new IntersectionObserver((records) => {
    for (const record of records) {
      const day = record.target.dataset.day;
      if (record.isIntersecting) wanted.add(day);
      else wanted.delete(day);
    }
    pump();
  }, { rootMargin: "2500px 0px" });

  function nextBatch() {
    const order = [...days.keys()];
    const start = order.findIndex((day) => wanted.has(day) && days.get(day).state === "placeholder");
    if (start < 0) return null;
    const batch = [];
    let photos = 0;
    for (let i = start; i < order.length; i++) {
      const state = days.get(order[i]);
      if (state.state !== "placeholder" || (order[i] === NO_DATE) !== (order[start] === NO_DATE)) break;
      if (batch.length && (photos + state.count > BATCH || daysBetween(batch[0].day, state.day) > 380)) break;
      batch.push(state);
      photos += state.count;
    }
    return batch;
  }

  function daysBetween(newer, older) {
    return (asDate(newer) - asDate(older)) / 86400000;
  }

  async function pump() {
    if (fetching) return;
    const batch = nextBatch();
    if (!batch) return;
    fetching = true;
    for (const state of batch) state.state = "loading";
    const newest = batch[0].day;
    const oldest = batch[batch.length - 1].day;
    try {
      const answer = await fetch(`${base}/api/days?newest=${newest}&oldest=${oldest}`, {
        headers: { Accept: "application/json" },
        credentials: "same-origin",
      });
      if (!answer.ok) throw new Error(`HTTP ${answer.status}`);
      const { photos } = await answer.json();
      const byDay = new Map();
      for (const entry of photos) {
        if (!byDay.has(entry[3])) byDay.set(entry[3], []);
        byDay.get(entry[3]).push(entry);
      }
      for (const state of batch) {
        const entries = byDay.get(state.day) || [];
        if (entries.length) fill(state, entries);
        else state.section.remove(); // emptied since the timeline was read
      }
    } catch (error) {
      for (const state of batch) state.state = "placeholder";
      console.warn("photoflow: could not load photos", error);
      await new Promise((resolve) => setTimeout(resolve, 3000));
    } finally {
      fetching = false;
    }
    pump();
  }

  // Days far off screen stop listening to scrolling and let go of their images; near again, they resume.
  const parking = new IntersectionObserver((records) => {
    for (const record of records) {
      const pig = record.target.querySelector(".pig-grid").pig;
      if (!pig) continue;
      if (record.isIntersecting && pig.parked) {
        pig.parked = false;
        window.addEventListener("scroll", pig.onScroll);
        pig.onScroll();
      } else if (!record.isIntersecting && !pig.parked) {
        pig.parked = true;
        window.removeEventListener("scroll", pig.onScroll);
        for (const image of pig.images) if (image.existsOnPage) image.hide();
      }
    }
  }, { rootMargin: "6000px 0px" });

  function placeholder(state) {
    state.grid.classList.add("placeholder");
    state.grid.style.height = `${estimate(state.count)}px`;
    placeholders.observe(state.section);
  }

  // First the photos the page brought along...
  const first = JSON.parse(document.getElementById("first-screen").textContent);
  const firstDays = new Map();
  for (const entry of first) {
    if (!firstDays.has(entry[3])) firstDays.set(entry[3], []);
    firstDays.get(entry[3]).push(entry);
  }
  for (const [day, entries] of firstDays) {
    const state = addDay(day, entries.length);
    fill(state, entries);
  }

  // ...then the whole timeline, for the days still to come.
  fetch(`${base}/api/timeline`, { headers: { Accept: "application/json" }, credentials: "same-origin" })
    .then((answer) => (answer.ok ? answer.json() : Promise.reject(new Error(`HTTP ${answer.status}`))))
    .then(({ days: index }) => {
      if (!index.length && !first.length) {
        document.getElementById("empty").hidden = false;
        return;
      }
      for (const [day, count] of index) {
        const known = days.get(day);
        if (known) {
          if (known.loaded < count) {
            // The page brought only part of a very full day: fetch it whole.
            known.count = count;
            known.grid.pig && window.removeEventListener("scroll", known.grid.pig.onScroll);
            known.grid.replaceChildren();
            known.grid.pig = null;
            parking.unobserve(known.section);
            known.state = "placeholder";
            placeholder(known);
          }
          continue;
        }
        placeholder(addDay(day, count));
      }
    })
    .catch((error) => console.warn("photoflow: could not load the timeline", error));

})();
