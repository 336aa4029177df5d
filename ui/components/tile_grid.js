// Catalog tile grid: a dense grid (or table) of rows whose selection lives in the browser.
// Clicks change the selection at once on screen; Python learns it in ONE state update
// sent SYNC_MS after the last click (so a burst of clicks is one update), which reruns
// only the grid's fragment. A press anywhere outside the grid (a "Save as slice" button,
// a page link) sends a pending update at once, before that press is handled.
// All row text is set with textContent, never innerHTML.
const SYNC_MS = 40;

function el(tag, cls, text) {
  const node = document.createElement(tag);
  if (cls) node.className = cls;
  if (text !== undefined && text !== null) node.textContent = String(text);
  return node;
}

export default function (component) {
  const { data, parentElement, setStateValue, setTriggerValue } = component;
  let root = parentElement.querySelector(".cg-root");
  if (!root) {
    root = el("div", "cg-root");
    parentElement.appendChild(root);
  }
  const rows = data.rows || [];
  const ids = rows.map((r) => r.id);
  // Local state survives re-renders of the same page and selection token.
  const stateKey = data.page_key + "|" + data.token;
  if (root._stateKey !== stateKey) {
    root._stateKey = stateKey;
    root._selected = new Set(data.selected || []);
    root._last = null;
  }
  const selected = root._selected;

  function send() {
    clearTimeout(root._timer);
    root._pending = null;
    setStateValue("selection", {
      page: ids, selected: ids.filter((id) => selected.has(id)), token: data.token,
    });
  }

  function sync() {
    clearTimeout(root._timer);
    root._pending = send;
    root._timer = setTimeout(send, SYNC_MS);
  }

  if (!root._flushOnPress) {
    // capture phase: runs before the pressed button's own handlers
    root._flushOnPress = (event) => {
      if (root._pending && !event.composedPath().includes(root)) root._pending();
    };
    document.addEventListener("pointerdown", root._flushOnPress, true);
  }

  function paint() {
    root.querySelectorAll("[data-idx]").forEach((node) => {
      const id = ids[Number(node.dataset.idx)];
      node.classList.toggle("cg-selected", selected.has(id));
      node.setAttribute("aria-selected", selected.has(id) ? "true" : "false");
    });
    const count = root.querySelector(".cg-count");
    if (count) {
      const onPage = ids.filter((id) => selected.has(id)).length;
      const total = (data.total_selected || 0) - (data.selected || []).length + onPage;
      count.textContent = total.toLocaleString() + " selected (" + onPage + " of " + ids.length +
        " on this page)";
    }
  }

  function onClick(event, idx) {
    const id = ids[idx];
    if (event.shiftKey && root._last !== null) {
      const [a, b] = [Math.min(root._last, idx), Math.max(root._last, idx)];
      for (let i = a; i <= b; i++) selected.add(ids[i]);
    } else if (selected.has(id)) {
      selected.delete(id);
    } else {
      selected.add(id);
    }
    root._last = idx;
    paint();
    sync();
  }

  function actionButtons(row) {
    const bar = el("div", "cg-actions");
    (data.actions || []).forEach((action) => {
      const button = el("button", "cg-action", action.label);
      button.type = "button";
      button.title = action.label;
      button.dataset.action = action.name;
      button.addEventListener("click", (event) => {
        event.stopPropagation();
        setTriggerValue("action", { name: action.name, id: row.id, n: Date.now() });
      });
      bar.appendChild(button);
    });
    return bar;
  }

  function tile(row, idx) {
    const node = el("div", "cg-tile");
    node.dataset.idx = String(idx);
    node.title = row.hover;
    node.setAttribute("role", "option");
    if (row.src) {
      const img = el("img", "cg-thumb");
      img.alt = row.id;
      img.loading = "lazy";
      img.decoding = "async";
      img.onload = () => {
        if (img.naturalWidth * 1.25 < data.size) img.classList.add("cg-pixelated");
      };
      img.src = row.src;
      node.appendChild(img);
    } else if (row.broken) {
      node.appendChild(el("div", "cg-text cg-broken", "unreadable image"));
    } else {
      node.appendChild(el("div", "cg-text", row.text));
    }
    if (row.badge) node.appendChild(el("span", "cg-badge", row.badge));
    if (row.tag) node.appendChild(el("span", "cg-tag", row.tag));
    if (row.label) node.appendChild(el("span", "cg-label", row.label));
    node.appendChild(el("span", "cg-check", "✓"));
    node.appendChild(actionButtons(row));
    node.addEventListener("click", (event) => onClick(event, idx));
    node.addEventListener("dblclick", () => {
      if ((data.actions || []).some((a) => a.name === "open")) {
        setTriggerValue("action", { name: "open", id: row.id, n: Date.now() });
      }
    });
    return node;
  }

  function tableRow(row, idx) {
    const tr = el("tr", "cg-row");
    tr.dataset.idx = String(idx);
    tr.title = row.hover;
    tr.appendChild(el("td", "cg-check-cell", "✓"));
    tr.appendChild(el("td", "cg-id", row.id));
    tr.appendChild(el("td", "cg-label-cell", row.label || ""));
    (data.columns || []).forEach((col) => tr.appendChild(el("td", "cg-num", row.cells[col] ?? "")));
    const textCell = el("td", "cg-text-cell", row.text || "");
    tr.appendChild(textCell);
    const actions = el("td", "cg-actions-cell");
    actions.appendChild(actionButtons(row));
    tr.appendChild(actions);
    tr.addEventListener("click", (event) => onClick(event, idx));
    tr.addEventListener("dblclick", () => {
      if ((data.actions || []).some((a) => a.name === "open")) {
        setTriggerValue("action", { name: "open", id: row.id, n: Date.now() });
      }
    });
    return tr;
  }

  const renderKey = stateKey + "|" + data.layout + "|" + data.size + "|" + data.render_id;
  if (root._renderKey !== renderKey) {
    root._renderKey = renderKey;
    root.replaceChildren();
    const head = el("div", "cg-head");
    head.appendChild(el("span", "cg-count"));
    head.appendChild(el("span", "cg-hint",
      "click: select · shift-click: select a range · double-click: open"));
    root.appendChild(head);
    if (data.layout === "table") {
      const table = el("table", "cg-table");
      const thead = el("tr");
      ["", "id", "label"].concat(data.columns || []).concat(["text", ""]).forEach(
        (name) => thead.appendChild(el("th", null, name)));
      table.appendChild(thead);
      rows.forEach((row, idx) => table.appendChild(tableRow(row, idx)));
      root.appendChild(table);
    } else {
      const grid = el("div", "cg-grid");
      grid.style.setProperty("--cg-size", data.size + "px");
      rows.forEach((row, idx) => grid.appendChild(tile(row, idx)));
      root.appendChild(grid);
    }
  }
  paint();
  return () => {
    if (root._pending) root._pending();
    document.removeEventListener("pointerdown", root._flushOnPress, true);
    root._flushOnPress = null;
  };
}
