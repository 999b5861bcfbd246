// huaxiang console: the audience builder (人群圈选).
// The definition is a tree of groups (AND / OR, each with a NOT toggle) and conditions; it is
// sent to the API in the JSON form of docs/audiences.md, and the API's canonical text is shown.
"use strict";

(() => {
  const root = document.getElementById("builder");
  if (!root) return;
  const config = JSON.parse(root.dataset.config);
  const T = (key) => config.texts[key] || key;
  const $ = (id) => document.getElementById(id);
  const DEBOUNCE_MS = 300;

  const OPS = {
    boolean: ["=", "is null", "is not null"],
    enum: ["=", "!=", "in", "is null", "is not null"],
    number: [">=", "<=", ">", "<", "=", "!=", "between", "is null", "is not null"],
  };
  const KIND = { boolean: "boolean", enum: "enum", hierarchical_enum: "enum", integer: "number", number: "number", probability: "number" };

  let tags = {}; // id -> catalog entry (with .kind and .choices)
  let nextId = 1;
  const newGroup = (op) => ({ kind: "group", id: `n${nextId++}`, op: op || "and", not: false, items: [] });
  const newCondition = () => ({ kind: "cond", id: `n${nextId++}`, tag: "", op: "", value: null, not: false });
  const tree = newGroup("and");
  let current = null; // {json, text, size} of the last estimate
  let marks = []; // [{path, id}] of the last serialisation: JSON path -> node, to place API errors
  let sequence = 0;
  let timer = null;

  const fmt = (n) => Number(n).toLocaleString("en-US");
  const pct = (share) => (share === null || share === undefined ? "" : `${(share * 100).toFixed(2)}%`);
  const el = (tag, attrs, ...children) => {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "text") node.textContent = value;
      else if (key === "class") node.className = value;
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value === true ? "" : value);
    }
    for (const child of children) if (child) node.append(child);
    return node;
  };
  const tagLabel = (tag) => {
    const zh = tag.name_zh || tag.id;
    const en = tag.name_en || tag.id;
    return `${config.lang === "zh" ? zh : en} · ${tag.id}`;
  };
  const sizeText = (item) =>
    item.withheld ? T("builder.withheld") : item.size === null || item.size === undefined ? "—" : fmt(item.size);

  // ------------------------------------------------------------------ the catalog

  function choicesOf(tag) {
    // Declared values first (with their names), then values seen in the snapshot, then parents.
    const found = new Map();
    for (const item of tag.values || []) {
      const name = config.lang === "zh" ? item.name_zh || item.name_en : item.name_en || item.name_zh;
      found.set(String(item.value), name && name !== item.value ? `${item.value} (${name})` : String(item.value));
    }
    for (const item of (tag.distribution && tag.distribution.top) || []) {
      if (item.value !== null && !found.has(String(item.value))) found.set(String(item.value), String(item.value));
    }
    if (tag.type === "hierarchical_enum") {
      for (const value of [...found.keys()]) {
        const parts = value.split("/");
        for (let i = 1; i < parts.length; i++) {
          const parent = parts.slice(0, i).join("/");
          if (!found.has(parent)) found.set(parent, `${parent} (${T("builder.parent")})`);
        }
      }
    }
    return [...found.entries()].sort((a, b) => a[0].localeCompare(b[0], "zh"));
  }

  async function loadCatalog() {
    const data = await hx.api("/catalog");
    for (const tag of data.tags) {
      if (tag.realtime || !(tag.type in KIND)) continue; // real-time and timestamp tags are not in the index
      tag.kind = KIND[tag.type];
      if (tag.kind === "enum") tag.choices = choicesOf(tag);
      tags[tag.id] = tag;
    }
    $("catalog-status").textContent = `${T("builder.catalog")}: ${Object.keys(tags).length} ${T("builder.tags")}`;
    const topBy = $("top-by");
    if (topBy) {
      for (const tag of Object.values(tags).filter((t) => t.type === "probability")) {
        topBy.append(el("option", { value: tag.id, text: tagLabel(tag) }));
      }
    }
  }

  // ------------------------------------------------------------------ the tree as controls

  function tagSelect(node) {
    const select = el("select", { class: "cond-tag", "aria-label": T("builder.tag") });
    select.append(el("option", { value: "", text: `— ${T("builder.pick_tag")} —` }));
    const byCategory = new Map();
    for (const tag of Object.values(tags)) {
      if (!byCategory.has(tag.category)) byCategory.set(tag.category, []);
      byCategory.get(tag.category).push(tag);
    }
    for (const [category, list] of byCategory) {
      const group = el("optgroup", { label: config.categories[category] || category });
      for (const tag of list) group.append(el("option", { value: tag.id, text: tagLabel(tag), selected: tag.id === node.tag }));
      select.append(group);
    }
    select.addEventListener("change", () => {
      node.tag = select.value;
      const tag = tags[node.tag];
      node.op = tag ? OPS[tag.kind][0] : "";
      node.value = tag && tag.kind === "boolean" ? true : null;
      redraw();
    });
    return select;
  }

  function opSelect(node, tag) {
    const select = el("select", { class: "cond-op", "aria-label": T("builder.operator") });
    for (const op of OPS[tag.kind]) select.append(el("option", { value: op, text: op.toUpperCase(), selected: op === node.op }));
    select.addEventListener("change", () => {
      const before = node.op;
      node.op = select.value;
      if (tag.kind === "boolean") node.value = node.op === "=" ? (node.value === false ? false : true) : null;
      else if ((before === "in") !== (node.op === "in") || (before === "between") !== (node.op === "between")) node.value = null;
      if (node.op.startsWith("is ")) node.value = null;
      redraw();
    });
    return select;
  }

  function numberInput(node, position, tag) {
    const current = Array.isArray(node.value) ? node.value[position] : node.value;
    const input = el("input", {
      type: "number",
      step: tag.type === "integer" ? "1" : "any",
      class: "cond-value-input",
      placeholder: tag.type === "probability" ? "0 – 1" : tag.distribution && tag.distribution.min !== undefined ? `${tag.distribution.min} – ${tag.distribution.max}` : "",
      value: current === null || current === undefined ? "" : String(current),
    });
    input.addEventListener("input", () => {
      const value = input.value === "" ? null : Number(input.value);
      if (node.op === "between") {
        const pair = Array.isArray(node.value) ? [...node.value] : [null, null];
        pair[position] = value;
        node.value = pair;
      } else node.value = value;
      changed();
    });
    return input;
  }

  function valueEditor(node, tag) {
    const box = el("span", { class: "cond-value" });
    if (node.op.startsWith("is ")) return box;
    if (tag.kind === "boolean") {
      const select = el("select", { class: "cond-bool" });
      select.append(el("option", { value: "true", text: "TRUE", selected: node.value !== false }));
      select.append(el("option", { value: "false", text: "FALSE", selected: node.value === false }));
      select.addEventListener("change", () => { node.value = select.value === "true"; changed(); });
      box.append(select);
    } else if (tag.kind === "enum") {
      const multiple = node.op === "in";
      const select = el("select", { class: "cond-enum", multiple, size: multiple ? Math.min(6, tag.choices.length) : null });
      if (!multiple) select.append(el("option", { value: "", text: `— ${T("builder.pick_value")} —` }));
      const chosen = new Set(Array.isArray(node.value) ? node.value.map(String) : node.value === null ? [] : [String(node.value)]);
      for (const [value, label] of tag.choices) select.append(el("option", { value, text: label, selected: chosen.has(value) }));
      select.addEventListener("change", () => {
        const picked = [...select.selectedOptions].map((o) => o.value).filter((v) => v !== "");
        node.value = multiple ? (picked.length ? picked : null) : picked[0] || null;
        changed();
      });
      box.append(select);
    } else if (node.op === "between") {
      box.append(numberInput(node, 0, tag), el("span", { text: ` ${T("builder.and")} ` }), numberInput(node, 1, tag));
    } else {
      box.append(numberInput(node, 0, tag));
    }
    return box;
  }

  function notToggle(node, cls) {
    const box = el("input", { type: "checkbox", class: cls, checked: node.not });
    box.addEventListener("change", () => { node.not = box.checked; changed(); });
    return el("label", { class: "not-toggle", title: T("builder.not_help") }, box, document.createTextNode(" NOT"));
  }

  function removeButton(parent, node, cls) {
    return el("button", {
      type: "button", class: cls, title: T("builder.remove"), text: "×",
      onclick: () => { parent.items = parent.items.filter((item) => item !== node); redraw(); },
    });
  }

  function drawCondition(node, parent) {
    const tag = tags[node.tag];
    const row = el("div", { class: "cond", "data-id": node.id });
    row.append(notToggle(node, "cond-not"), tagSelect(node));
    if (tag) row.append(opSelect(node, tag), valueEditor(node, tag));
    row.append(removeButton(parent, node, "cond-remove"), el("span", { class: "cond-error error" }));
    return row;
  }

  function drawGroup(node, parent) {
    const box = el("div", { class: parent ? "group" : "group root", "data-id": node.id });
    const op = el("select", { class: "group-op", "aria-label": T("builder.combine") });
    op.append(el("option", { value: "and", text: `AND ${T("builder.all")}`, selected: node.op === "and" }));
    op.append(el("option", { value: "or", text: `OR ${T("builder.any")}`, selected: node.op === "or" }));
    op.addEventListener("change", () => { node.op = op.value; changed(); });
    const head = el("div", { class: "group-head" }, notToggle(node, "group-not"), op,
      el("button", { type: "button", class: "add-cond", text: `+ ${T("builder.add_condition")}`, onclick: () => { node.items.push(newCondition()); redraw(); } }),
      el("button", { type: "button", class: "add-group", text: `+ ${T("builder.add_group")}`, onclick: () => { const g = newGroup(node.op === "and" ? "or" : "and"); g.items.push(newCondition()); node.items.push(g); redraw(); } }),
      parent ? removeButton(parent, node, "group-remove") : null,
      el("span", { class: "group-error error" }));
    const items = el("div", { class: "group-items" });
    for (const item of node.items) items.append(item.kind === "group" ? drawGroup(item, node) : drawCondition(item, node));
    if (!node.items.length) items.append(el("p", { class: "muted", text: T("builder.empty_group") }));
    box.append(head, items);
    return box;
  }

  function redraw() {
    const holder = $("tree");
    holder.replaceChildren(drawGroup(tree, null));
    changed();
  }

  // ------------------------------------------------------------------ the tree as JSON

  function complete(node) {
    if (node.kind === "group") return node.items.some(complete);
    const tag = tags[node.tag];
    if (!tag || !node.op) return false;
    if (node.op.startsWith("is ")) return true;
    if (node.op === "between") return Array.isArray(node.value) && node.value.length === 2 && node.value.every((v) => v !== null && !Number.isNaN(v));
    if (node.op === "in") return Array.isArray(node.value) && node.value.length > 0;
    return node.value !== null && node.value !== undefined && !Number.isNaN(node.value);
  }

  function typed(tag, value) {
    // Enum values are text; a number tag's declared values never reach here.
    return tag.kind === "number" ? Number(value) : value;
  }

  function serialise(node, path, found) {
    const inner = node.not ? `${path}.not` : path;
    let json;
    if (node.kind === "cond") {
      const tag = tags[node.tag];
      json = { tag: node.tag, op: node.op };
      if (!node.op.startsWith("is ")) {
        json.value = Array.isArray(node.value) ? node.value.map((v) => typed(tag, v)) : typed(tag, node.value);
      }
    } else {
      const kids = node.items.filter(complete);
      if (kids.length === 1) json = serialise(kids[0], inner, found);
      else json = { [node.op]: kids.map((kid, i) => serialise(kid, `${inner}.${node.op}[${i}]`, found)) };
    }
    found.push({ path: inner, id: node.id });
    if (inner !== path) found.push({ path, id: node.id });
    return node.not ? { not: json } : json;
  }

  function definition() {
    if (!complete(tree)) return null;
    const found = [];
    const json = serialise(tree, "$", found);
    marks = found;
    return json;
  }

  // ------------------------------------------------------------------ errors next to their control

  function clearErrors() {
    for (const node of root.querySelectorAll(".cond-error, .group-error")) node.textContent = "";
    for (const node of root.querySelectorAll(".cond.has-error, .group.has-error")) node.classList.remove("has-error");
    $("builder-error").textContent = "";
  }

  function placeError(error) {
    const message = error.message || String(error);
    let target = null;
    const at = /at (\$[^\s(]*)/.exec(message);
    if (at) {
      let best = null;
      for (const mark of marks) {
        if ((at[1] === mark.path || at[1].startsWith(`${mark.path}.`)) && (!best || mark.path.length > best.path.length)) best = mark;
      }
      if (best) target = root.querySelector(`[data-id="${best.id}"]`);
    }
    if (!target) {
      const named = /tag '([^']+)'/.exec(message);
      if (named) {
        for (const row of root.querySelectorAll(".cond")) {
          if (row.querySelector(".cond-tag").value === named[1]) { target = row; break; }
        }
      }
    }
    if (target) {
      target.classList.add("has-error");
      target.querySelector(target.classList.contains("cond") ? ".cond-error" : ".group-error").textContent = message;
    }
    $("builder-error").textContent = message;
  }

  // ------------------------------------------------------------------ size, as conditions change

  function changed() {
    clearTimeout(timer);
    if (!complete(tree)) {
      refresh(); // nothing to ask the API
      return;
    }
    $("size").dataset.state = "pending";
    timer = setTimeout(refresh, DEBOUNCE_MS);
  }

  function showSize(result) {
    const size = $("size");
    size.textContent = result.withheld ? `${T("builder.withheld")} (< ${fmt(config.min_audience)})` : fmt(result.size);
    size.dataset.size = result.withheld ? "" : String(result.size);
    $("size-share").textContent = result.withheld ? "" : `${pct(result.share)} · ${fmt(result.users)} ${T("builder.users")}`;
    size.dataset.state = result.withheld ? "withheld" : "ok";
  }

  async function refresh() {
    const mine = ++sequence;
    const json = definition();
    clearErrors();
    if (json === null) {
      current = null;
      $("size").textContent = "—";
      $("size").dataset.size = "";
      $("size-share").textContent = "";
      $("definition-text").textContent = "";
      $("size").dataset.state = "empty";
      return;
    }
    try {
      const result = await hx.api("/audiences/estimate", { definition: json });
      if (mine !== sequence) return;
      current = { json, text: result.text, size: result.size };
      $("definition-text").textContent = result.text;
      showSize(result);
    } catch (error) {
      if (mine !== sequence) return;
      current = null;
      $("definition-text").textContent = "";
      $("size").textContent = "!";
      $("size").dataset.size = "";
      $("size").dataset.state = "error";
      placeError(error);
    }
  }

  function needCurrent(errorId) {
    if (current) return current.json;
    $(errorId).textContent = T("builder.need_definition");
    return null;
  }

  async function run(errorId, work) {
    const box = $(errorId);
    box.textContent = "";
    try {
      await work();
    } catch (error) {
      box.textContent = error.message || String(error);
    }
  }

  // ------------------------------------------------------------------ saved audiences and Venn

  async function loadSaved() {
    const body = $("saved").querySelector("tbody");
    const saved = await hx.api("/audiences");
    body.replaceChildren();
    for (const item of saved) {
      const latest = item.sizes.length ? item.sizes[item.sizes.length - 1] : null;
      body.append(el("tr", { "data-name": item.name },
        el("td", {}, el("input", { type: "checkbox", class: "venn-pick", value: item.name, "aria-label": item.name })),
        el("td", { text: item.name }),
        el("td", { text: T(`builder.kind.${item.kind}`) }),
        el("td", {}, el("code", { text: item.text })),
        el("td", { class: "num", text: latest ? `${sizeText(latest)} @ ${latest.as_of}` : "—" }),
        el("td", { text: item.created_by || "" })));
    }
    if (!saved.length) body.append(el("tr", {}, el("td", { colspan: "6", class: "muted", text: T("builder.none_saved") })));
  }

  const CENTRES = {
    2: [[0, 0], [1.2, 0]],
    3: [[0, 0], [1.2, 0], [0.6, 1.0]],
  };
  const REGION_AT = {
    2: { "10": [-0.45, 0], "01": [1.65, 0], "11": [0.6, 0] },
    3: { "100": [-0.4, -0.3], "010": [1.6, -0.3], "001": [0.6, 1.5], "110": [0.6, -0.45], "101": [0.05, 0.75], "011": [1.15, 0.75], "111": [0.6, 0.3] },
  };
  const COLOURS = ["rgba(194,65,12,0.25)", "rgba(37,99,235,0.25)", "rgba(22,163,74,0.25)"];

  function drawVenn(result) {
    const count = result.names.length;
    const centres = CENTRES[count];
    const shapes = centres.map(([x, y], i) => ({
      type: "circle", xref: "x", yref: "y", x0: x - 1, y0: y - 1, x1: x + 1, y1: y + 1,
      fillcolor: COLOURS[i], line: { color: COLOURS[i].replace("0.25", "0.9") },
    }));
    const annotations = centres.map(([x, y], i) => ({
      x: x + (i === 0 ? -0.7 : i === 1 ? 0.7 : 0), y: y + (i === 2 ? 1.15 : -1.15), showarrow: false,
      text: `<b>${result.names[i]}</b>`, font: { size: 13 },
    }));
    for (const region of result.regions) {
      const key = result.names.map((name) => (region.in.includes(name) ? "1" : "0")).join("");
      const [x, y] = REGION_AT[count][key];
      annotations.push({ x, y, showarrow: false, text: sizeText(region), font: { size: 14 } });
    }
    const layout = {
      shapes, annotations, showlegend: false, height: 420, margin: { l: 20, r: 20, t: 40, b: 20 },
      title: { text: `${T("builder.union")}: ${sizeText(result.union)}` },
      xaxis: { visible: false, range: [-1.6, 2.8] }, yaxis: { visible: false, range: [-1.5, count === 3 ? 2.4 : 1.5], scaleanchor: "x" },
    };
    if (typeof Plotly !== "undefined") {
      Plotly.newPlot($("venn-chart"), [], layout, { displaylogo: false, responsive: true, staticPlot: true });
      $("venn-chart").dataset.drawn = "1";
    }
    const body = $("venn-regions").querySelector("tbody");
    body.replaceChildren();
    for (const region of result.regions) {
      body.append(el("tr", { "data-in": region.in.join(",") }, el("td", { text: region.label }),
        el("td", { class: "num", text: sizeText(region) }), el("td", { class: "num", text: pct(region.share) })));
    }
    body.append(el("tr", { "data-in": "union" }, el("td", { text: T("builder.union") }),
      el("td", { class: "num", text: sizeText(result.union) }), el("td", { class: "num", text: pct(result.union.share) })));
    $("venn-result").hidden = false;
  }

  async function venn() {
    const json = needCurrent("venn-error");
    if (!json) return;
    const picked = [...root.querySelectorAll(".venn-pick:checked")].map((box) => box.value);
    if (picked.length < 1 || picked.length > 2) {
      $("venn-error").textContent = T("builder.venn_pick_help");
      return;
    }
    const currentName = T("builder.current");
    const result = await hx.api("/audiences/venn", {
      definitions: [json, ...picked.map((name) => ({ in_audience: name }))],
      names: [currentName, ...picked],
    });
    drawVenn(result);
  }

  // ------------------------------------------------------------------ top N, split, save, export

  function table(id, headers, rows) {
    const head = el("tr", {}, ...headers.map((h) => el("th", { text: h })));
    const body = el("tbody", {}, ...rows.map((cells) => el("tr", {}, ...cells.map((c) => (c instanceof Node ? el("td", {}, c) : el("td", { text: c }))))));
    return el("table", { id }, el("thead", {}, head), body);
  }

  const shown4 = (value) => (typeof value === "number" ? String(Number(value.toFixed(4))) : String(value ?? ""));

  async function top() {
    const json = needCurrent("top-error");
    if (!json) return;
    const by = $("top-by").value;
    const result = await hx.api("/audiences/top", { definition: json, by, n: Number($("top-n").value), descending: !$("top-ascending").checked });
    const shown = result.members.slice(0, 20);
    const rows = shown.map((m) => [String(m.rank), el("a", { href: `/console/users/${encodeURIComponent(m.user_id)}`, text: m.user_id }), shown4(m[by] ?? m.value)]);
    $("top-result").replaceChildren(
      el("p", { id: "top-size", "data-size": String(result.size), text: `${T("builder.top_found")}: ${fmt(result.size)}${result.size > shown.length ? ` (${T("builder.first")} ${shown.length})` : ""}` }),
      table("top-members", ["#", "user_id", by], rows));
  }

  async function split() {
    const json = needCurrent("split-error");
    if (!json) return;
    const ratios = $("split-ratios").value.split(",").map((s) => Number(s.trim())).filter((n) => !Number.isNaN(n));
    const names = $("split-names").value.split(",").map((s) => s.trim()).filter(Boolean);
    const body = { definition: json, ratios, salt: $("split-salt").value };
    if (names.length) body.names = names;
    const result = await hx.api("/audiences/split", body);
    $("split-result").replaceChildren(table("split-groups", [T("builder.group"), T("builder.ratio"), T("builder.size")],
      result.groups.map((g) => [g.name, `${(g.ratio * 100).toFixed(1)}%`, sizeText(g)])));
  }

  async function save() {
    const json = needCurrent("save-error");
    if (!json) return;
    const body = { name: $("save-name").value.trim(), definition: json, kind: $("save-kind").value };
    const description = $("save-description").value.trim();
    if (description) body.description = description;
    const result = await hx.api("/audiences", body);
    $("save-result").textContent = `${T("builder.saved_ok")}: ${result.name} (${T(`builder.kind.${result.kind}`)}), ${sizeText(result)}`;
    $("save-result").dataset.name = result.name;
    await loadSaved();
  }

  async function exportIds() {
    const json = needCurrent("export-error");
    if (!json) return;
    const body = { definition: json, file_name: $("export-file").value.trim(), overwrite: $("export-overwrite").checked };
    if (!config.merchant && $("export-hashed").checked) body.hash_salt = $("export-salt").value;
    const result = await hx.api("/audiences/export", body);
    const href = `/console/audiences/exports/${encodeURIComponent(result.file)}`;
    $("export-result").replaceChildren(el("p", { id: "export-done", "data-id-mode": result.id_mode, "data-rows": String(result.rows) },
      document.createTextNode(`${T("builder.exported")}: `), el("a", { id: "export-link", href, download: result.file, text: `exports/${result.file}` }),
      document.createTextNode(` · ${fmt(result.rows)} ${T("builder.rows")} · ${result.id_mode} · ${result.format} · SHA-256 ${result.sha256.slice(0, 12)}…`)));
  }

  function bind(id, errorId, work) {
    const button = $(id);
    if (button) button.addEventListener("click", () => run(errorId, work));
  }

  document.addEventListener("DOMContentLoaded", async () => {
    bind("venn-run", "venn-error", venn);
    bind("top-run", "top-error", top);
    bind("split-run", "split-error", split);
    bind("save-run", "save-error", save);
    bind("export-run", "export-error", exportIds);
    try {
      await loadCatalog();
      tree.items.push(newCondition());
      redraw();
      root.dataset.ready = "1";
      await loadSaved();
    } catch (error) {
      $("catalog-status").textContent = error.message || String(error);
      $("catalog-status").classList.add("error");
    }
  });
})();
