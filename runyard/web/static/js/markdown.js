// A tiny, safe Markdown renderer for remarks: paragraphs, bulleted and numbered lists,
// *emphasis*, **strong**, `code` and [links](https://...). It builds DOM nodes from text:
// nothing is ever parsed as HTML, and links go to http(s) addresses only (anything else is
// shown as text).

import { h } from "./dom.js";

const INLINE = /(`[^`\n]+`)|(\*\*[^*\n]+\*\*)|(\*[^*\n]+\*|_[^_\n]+_)|(\[[^\]\n]+\]\([^)\s]+\))/;

// An http(s) address, or null: the only links the UI draws from a package's text.
export function safeHref(text) {
  try {
    const url = new URL(text);
    return url.protocol === "http:" || url.protocol === "https:" ? url.href : null;
  } catch {
    return null;
  }
}

export function inline(text) {
  const nodes = [];
  let rest = text;
  while (rest) {
    const match = rest.match(INLINE);
    if (!match) {
      nodes.push(rest);
      break;
    }
    if (match.index) nodes.push(rest.slice(0, match.index));
    const [token] = match;
    if (match[1]) nodes.push(h("code", {}, token.slice(1, -1)));
    else if (match[2]) nodes.push(h("strong", {}, inline(token.slice(2, -2))));
    else if (match[3]) nodes.push(h("em", {}, inline(token.slice(1, -1))));
    else {
      const [, label, target] = token.match(/^\[([^\]]+)\]\(([^)]+)\)$/);
      const href = safeHref(target);
      nodes.push(href ? h("a", { href, rel: "noopener noreferrer nofollow", target: "_blank" }, inline(label)) : token);
    }
    rest = rest.slice(match.index + token.length);
  }
  return nodes;
}

// The Markdown ``source`` as a <div class="markdown"> of paragraphs and lists.
export function markdown(source) {
  const box = h("div", { class: "markdown" });
  const lines = String(source || "").replace(/\r\n?/g, "\n").split("\n");
  let paragraph = [];
  let list = null;
  const flush = () => {
    if (paragraph.length) box.append(h("p", {}, inline(paragraph.join(" "))));
    paragraph = [];
  };
  for (const line of lines) {
    const bullet = line.match(/^\s*[-*+]\s+(.*)$/);
    const numbered = line.match(/^\s*\d+[.)]\s+(.*)$/);
    if (bullet || numbered) {
      flush();
      const tag = bullet ? "ul" : "ol";
      if (!list || list.tagName.toLowerCase() !== tag) {
        list = h(tag);
        box.append(list);
      }
      list.append(h("li", {}, inline((bullet || numbered)[1])));
      continue;
    }
    list = null;
    if (!line.trim()) flush();
    else paragraph.push(line.trim());
  }
  flush();
  return box;
}
