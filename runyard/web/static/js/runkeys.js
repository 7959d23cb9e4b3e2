// Moving about the runs table with the keyboard. The table (role grid) keeps the focus and
// one of its cells is the active cell (aria-activedescendant; drawn with a ring): the arrow
// keys move it, Home and End to the first and last column, Ctrl+Home and Ctrl+End to the
// first and last run, Page Up and Page Down a screen; Enter opens its job, Space picks or
// drops it in the selection of jobs, Escape closes the job panel. Only the rows in view
// exist (runrows.js), so the active cell is a position (run row, task column), found again
// whenever rows are drawn, and the table scrolls to bring it into view.

import { ROW_HEIGHT } from "./runrows.js";

const ACTIVE_ID = "runs-active-cell";

// ``total()``: the number of runs; ``columns()``: the number of task columns. ``onEnter``,
// ``onSpace`` get the active cell's element and row index; ``onEscape`` gets nothing.
// Answers {activate(index, column), drawn()}: the first when a cell is clicked, the second
// after rows are drawn.
export function runKeys({ scroller, head, body, total, columns, onEnter, onSpace, onEscape }) {
  let at = null; // {index, column}: the active cell
  let reveal = false; // scroll the active cell sideways into view once it is drawn

  function cellAt() {
    const row = at && body.querySelector(`.runs-row.run[data-index="${at.index}"]`);
    return row ? row.querySelectorAll(".cell")[at.column] || null : null;
  }

  function show() {
    const cell = cellAt();
    const old = body.querySelector(`#${ACTIVE_ID}`);
    if (old && old !== cell) {
      old.removeAttribute("id");
      old.classList.remove("active");
    }
    if (!cell) {
      scroller.removeAttribute("aria-activedescendant");
      return;
    }
    cell.id = ACTIVE_ID;
    cell.classList.add("active");
    scroller.setAttribute("aria-activedescendant", ACTIVE_ID);
    if (reveal) cell.scrollIntoView({ block: "nearest", inline: "nearest" });
    reveal = false;
  }

  // The rows under the sticky heading are those in view.
  function scrollToRow(index) {
    const top = index * ROW_HEIGHT;
    const bottom = head.offsetHeight + top + ROW_HEIGHT;
    if (top < scroller.scrollTop) scroller.scrollTop = top;
    else if (bottom > scroller.scrollTop + scroller.clientHeight) scroller.scrollTop = bottom - scroller.clientHeight;
  }

  function moveTo(index, column) {
    if (!total() || !columns()) return;
    at = { index: Math.min(Math.max(index, 0), total() - 1), column: Math.min(Math.max(column, 0), columns() - 1) };
    reveal = true;
    scrollToRow(at.index);
    show();
  }

  function keyMoves(event) {
    const page = Math.max(1, Math.floor((scroller.clientHeight - head.offsetHeight) / ROW_HEIGHT) - 1);
    const { index, column } = at;
    const ctrl = event.ctrlKey || event.metaKey;
    return {
      ArrowUp: [index - 1, column],
      ArrowDown: [index + 1, column],
      ArrowLeft: [index, column - 1],
      ArrowRight: [index, column + 1],
      PageUp: [index - page, column],
      PageDown: [index + page, column],
      Home: ctrl ? [0, column] : [index, 0],
      End: ctrl ? [total() - 1, column] : [index, columns() - 1],
    }[event.key];
  }

  scroller.addEventListener("keydown", (event) => {
    // Keys on the controls inside the table (a checkbox, a heading) keep their meaning.
    if (event.target !== scroller || event.altKey) return;
    if (!at) moveTo(Math.floor(scroller.scrollTop / ROW_HEIGHT), 0);
    if (!at) return;
    const move = keyMoves(event);
    const cell = cellAt();
    if (move) moveTo(...move);
    else if (event.key === "Enter" && cell) onEnter(cell, at.index);
    else if (event.key === " " && cell) onSpace(cell, at.index);
    else if (event.key === "Escape") onEscape();
    else return;
    event.preventDefault();
  });

  // Tabbing into the table makes its first run in view active (without scrolling sideways).
  scroller.addEventListener("focus", () => {
    if (at || !total() || !columns()) return;
    at = { index: Math.min(Math.floor(scroller.scrollTop / ROW_HEIGHT), total() - 1), column: 0 };
    show();
  });

  return {
    activate(index, column) {
      at = { index, column };
      show();
    },
    drawn: show,
  };
}
