// A documentation file of a package (its description, readme or CITATION.cff) as a page:
// Markdown (.md, .markdown) drawn by a small local renderer, other files as plain text.
// Besides what markdown.js draws (paragraphs, lists, emphasis, code, links), a document has
// headings (# and underlined), fenced code blocks, block quotes, rules and pipe tables. Like
// markdown.js it builds DOM nodes from text: nothing is ever parsed as HTML.

import { h } from "./dom.js";
import { inline, markdown } from "./markdown.js";

const HEADING = /^(#{1,6})\s+(.*?)\s*#*\s*$/;
const FENCE = /^\s*(```|~~~)/;
const RULE = /^\s*([-*_])(\s*\1){2,}\s*$/;
const TABLE_RULE = /^\s*\|?\s*:?-+:?\s*(\|\s*:?-+:?\s*)*\|?\s*$/;

export function isMarkdown(filename) {
  return /\.(md|markdown)$/i.test(filename || "");
}

// One documentation file ({filename, text}) as an element.
export function documentFile(file) {
  if (isMarkdown(file.filename)) return richMarkdown(file.text);
  return h("pre", { class: "document-text" }, file.text);
}

function cells(line) {
  return line.trim().replace(/^\|/, "").replace(/\|$/, "").split("|").map((c) => c.trim());
}

// A heading of the document, below the h3 of the section that shows it (# is an h4).
function heading(level, text) {
  return h(`h${Math.min(6, level + 3)}`, { class: "doc-heading" }, inline(text));
}

// The Markdown ``source`` as a <div class="markdown document">.
export function richMarkdown(source) {
  const box = h("div", { class: "markdown document" });
  const lines = String(source || "").replace(/\r\n?/g, "\n").split("\n");
  let plain = []; // lines markdown.js draws (paragraphs, lists)
  const flush = () => {
    if (plain.some((l) => l.trim())) box.append(...markdown(plain.join("\n")).childNodes);
    plain = [];
  };
  for (let i = 0; i < lines.length; i += 1) {
    const line = lines[i];
    const next = lines[i + 1] || "";
    const fence = line.match(FENCE);
    if (fence) {
      flush();
      const code = [];
      for (i += 1; i < lines.length && !lines[i].trim().startsWith(fence[1]); i += 1) code.push(lines[i]);
      box.append(h("pre", { class: "doc-code" }, h("code", {}, code.join("\n"))));
      continue;
    }
    const atx = line.match(HEADING);
    if (atx) {
      flush();
      box.append(heading(atx[1].length, atx[2]));
      continue;
    }
    if (line.trim() && !plain.some((l) => l.trim()) && /^\s*(=+|-+)\s*$/.test(next) && !/^\s*[-*+]\s/.test(line)) {
      flush();
      box.append(heading(next.trim().startsWith("=") ? 1 : 2, line.trim()));
      i += 1;
      continue;
    }
    if (RULE.test(line)) {
      flush();
      box.append(h("hr"));
      continue;
    }
    if (line.trim().startsWith("|") && TABLE_RULE.test(next)) {
      flush();
      const head = cells(line);
      const rows = [];
      for (i += 2; i < lines.length && lines[i].trim().startsWith("|"); i += 1) rows.push(cells(lines[i]));
      i -= 1;
      box.append(h("table", { class: "doc-table" },
        h("thead", {}, h("tr", {}, head.map((c) => h("th", {}, inline(c))))),
        h("tbody", {}, rows.map((r) => h("tr", {}, head.map((_, n) => h("td", {}, inline(r[n] || "")))))),
      ));
      continue;
    }
    if (/^\s*>/.test(line)) {
      flush();
      const quoted = [];
      for (; i < lines.length && /^\s*>/.test(lines[i]); i += 1) quoted.push(lines[i].replace(/^\s*>\s?/, ""));
      i -= 1;
      box.append(h("blockquote", {}, ...richMarkdown(quoted.join("\n")).childNodes));
      continue;
    }
    if (!line.trim()) {
      plain.push(line);
      flush();
      continue;
    }
    plain.push(line);
  }
  flush();
  return box;
}
