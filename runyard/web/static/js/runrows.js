// The rows of the runs table, scrolled virtually: runs come from the server a block at a time
// (GET /api/workflows/{name}/runs?offset=&limit=), and only the rows in view (and a few
// around them) exist in the page, so 100,000 runs scroll as smoothly as ten. runs.js says
// how a run's row looks (``render``) and what a page of runs changes besides the rows
// (``onPage``: the columns, the count); this module fetches, places and drops the rows.

import { api } from "./api.js";
import { h } from "./dom.js";

export const ROW_HEIGHT = 30; // px; the same as .runs-row in app.css
const BLOCK = 200; // runs per request
const OVERSCAN = 8; // rows drawn above and below the visible ones
const REFRESH_GAP_MS = 300; // at most about three refreshes a second

// ``url(offset, limit)``: the address of a page of runs; ``render(run, index)``: a run's row;
// ``onPage(page)``: called with each page received, before its rows are drawn; ``onDrawn()``:
// after rows were drawn. Answers {draw, refresh, restart, redrawAll, runAt, runsBetween,
// total, dispose}.
export function runRows({ scroller, head, body, url, render, onPage, onDrawn, notify }) {
  let total = 0;
  let generation = 0; // raised by every restart: answers of older requests are dropped
  const blocks = new Map(); // block index -> runs
  const loading = new Set(); // "generation:block" of the requests under way
  const drawn = new Map(); // row index -> {el, run}
  let alive = true;

  function received(index, page) {
    blocks.set(index, page.runs);
    if (page.total !== total) {
      total = page.total;
      body.style.height = `${total * ROW_HEIGHT}px`;
    }
    onPage(page);
  }

  // Block ``index`` of the table (BLOCK runs) as the server has it now.
  function getBlock(index) {
    return api("GET", url(index * BLOCK, BLOCK));
  }

  async function fetchBlock(index) {
    const asked = generation;
    const key = `${asked}:${index}`;
    if (loading.has(key)) return;
    loading.add(key);
    try {
      const page = await getBlock(index);
      if (!alive || asked !== generation) return;
      received(index, page);
      draw();
    } catch (exc) {
      if (alive) notify(exc.message, "error");
    } finally {
      loading.delete(key);
    }
  }

  // The runs of rows first..last, with the blocks not at hand fetched (a shift-click range).
  async function runsBetween(first, last) {
    const found = [];
    for (let b = Math.floor(first / BLOCK); b <= Math.floor(last / BLOCK); b += 1) {
      const runs = blocks.get(b) || (await getBlock(b)).runs;
      runs.forEach((run, i) => b * BLOCK + i >= first && b * BLOCK + i <= last && found.push(run));
    }
    return found;
  }

  function visibleRange() {
    const top = Math.max(0, scroller.scrollTop - head.offsetHeight);
    const first = Math.max(0, Math.floor(top / ROW_HEIGHT) - OVERSCAN);
    const last = Math.min(total - 1, Math.ceil((top + scroller.clientHeight) / ROW_HEIGHT) + OVERSCAN);
    return [first, last];
  }

  let frame = 0;
  function draw() {
    if (!frame) frame = requestAnimationFrame(drawNow);
  }

  function drawNow() {
    frame = 0;
    const [first, last] = visibleRange();
    for (const [index, row] of drawn) {
      if (index < first || index > last) {
        row.el.remove();
        drawn.delete(index);
      }
    }
    for (let index = first; index <= last; index += 1) {
      const runs = blocks.get(Math.floor(index / BLOCK));
      if (!runs) {
        fetchBlock(Math.floor(index / BLOCK));
        continue;
      }
      const run = runs[index % BLOCK];
      const row = drawn.get(index);
      if (row && row.run === run) continue;
      const el = run ? render(run, index) : h("div", { class: "runs-row placeholder" });
      el.style.transform = `translateY(${index * ROW_HEIGHT}px)`;
      if (row) row.el.replaceWith(el);
      else body.append(el);
      drawn.set(index, { el, run });
    }
    onDrawn();
  }

  // The rows in view fetched again (something changed); one refresh at a time.
  let refreshing = false;
  let again = false;
  async function refresh() {
    if (refreshing) {
      again = true;
      return;
    }
    refreshing = true;
    const [first, last] = visibleRange();
    const wanted = new Set();
    for (let i = Math.max(0, first); i <= Math.max(first, last); i += 1) wanted.add(Math.floor(i / BLOCK));
    for (const index of [...blocks.keys()]) if (!wanted.has(index)) blocks.delete(index);
    const asked = generation;
    try {
      for (const index of wanted) {
        const page = await getBlock(index);
        if (!alive || asked !== generation) return;
        received(index, page);
      }
      draw();
    } catch (exc) {
      if (alive) notify(exc.message, "error");
    } finally {
      refreshing = false;
      if (again && alive) {
        again = false;
        setTimeout(refresh, REFRESH_GAP_MS);
      }
    }
  }

  // Every row drawn again (the columns changed).
  function redrawAll() {
    for (const row of drawn.values()) row.el.remove();
    drawn.clear();
  }

  // From the top with other filters: what was fetched is dropped.
  function restart() {
    generation += 1;
    blocks.clear();
    redrawAll();
    scroller.scrollTop = 0;
    fetchBlock(0);
  }

  scroller.addEventListener("scroll", draw, { passive: true });
  const resize = new ResizeObserver(draw);
  resize.observe(scroller);
  fetchBlock(0);

  return {
    draw,
    refresh,
    restart,
    redrawAll,
    runsBetween,
    runAt: (index) => drawn.get(index)?.run,
    total: () => total,
    dispose() {
      alive = false;
      resize.disconnect();
      if (frame) cancelAnimationFrame(frame);
    },
  };
}
