// wenda staff page: ask a question, read the cited answer, open the cited span.
// Plain JS, no dependencies. Every string from the server is inserted as text,
// except the passage snippet, which the server has already HTML-escaped (with
// the matched words wrapped in <b>).
(function () {
  "use strict";

  const API = "api"; // relative, so the page also works behind a path prefix
  const TOP_K = 5;

  const $ = (id) => document.getElementById(id);
  const form = $("ask-form");
  const question = $("question");
  const askButton = $("ask");
  const sourceSelect = $("source");
  const modeSelect = $("mode");
  const statusBox = $("status");
  const result = $("result");
  const answerBox = $("answer");
  const metaBox = $("meta");
  const missingBox = $("missing");
  const sourcesLabel = $("sources-label");
  const sourcesList = $("sources");
  const viewer = $("viewer");
  const viewerTitle = $("viewer-title");
  const viewerLoc = $("viewer-loc");
  const viewerBody = $("viewer-body");

  let askController = null; // AbortController of the request in flight
  let viewController = null;
  let currentSources = []; // sources of the answer on screen

  // ---------- helpers ----------

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    if (attrs) {
      for (const [key, value] of Object.entries(attrs)) {
        if (value === null || value === undefined || value === false) continue;
        if (key === "class") node.className = value;
        else if (key === "text") node.textContent = value;
        else if (key.startsWith("data-")) node.setAttribute(key, String(value));
        else if (key in node) node[key] = value;
        else node.setAttribute(key, String(value));
      }
    }
    for (const child of children) {
      if (child === null || child === undefined) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function showStatus(kind, message) {
    statusBox.hidden = false;
    statusBox.className = "status " + kind;
    statusBox.replaceChildren();
    if (kind === "loading") statusBox.append(el("span", { class: "spinner", "aria-hidden": "true" }));
    statusBox.append(el("span", { text: message }));
  }

  function hideStatus() {
    statusBox.hidden = true;
    statusBox.replaceChildren();
  }

  // Fetch JSON; on a non-2xx answer throw an Error carrying the server's `error`.
  async function getJSON(url, options) {
    let response;
    try {
      response = await fetch(url, options);
    } catch (err) {
      if (err && err.name === "AbortError") throw err;
      throw new Error("无法连接到服务器，请检查网络或稍后再试。");
    }
    let body = null;
    const text = await response.text();
    if (text) {
      try {
        body = JSON.parse(text);
      } catch (_) {
        body = null;
      }
    }
    if (!response.ok) {
      const message = body && body.error ? body.error : `服务器返回错误（HTTP ${response.status}）`;
      const err = new Error(message);
      err.code = body && body.code ? body.code : null;
      err.status = response.status;
      throw err;
    }
    if (body === null) throw new Error("服务器返回的内容无法解析。");
    return body;
  }

  // Chinese wording for the server's error codes; the server's own `error`
  // text is shown beside it (it says exactly what was wrong).
  const ERROR_CODES = {
    empty_query: "请输入问题。",
    query_too_long: "问题太长了，请精简后再问。",
    no_searchable_text: "问题里没有可以检索的词，请换个说法。",
    unknown_source: "没有这份报告。",
    unknown_mode: "不支持这种检索方式。",
    mode_unavailable: "这种检索方式当前不可用。",
    bad_k: "返回条数不合法。",
    bad_span: "原文位置不合法。",
    not_found: "找不到请求的内容。",
    index_unusable: "索引不可用，请联系管理员重建索引。",
    internal: "服务器内部错误，请稍后再试。",
  };

  // [headline, detail]: the detail is the server's message when there is a
  // Chinese headline for its code, else the server's message is the headline.
  function errorParts(err) {
    const message = (err && err.message) || "未知错误";
    const zh = err && err.code ? ERROR_CODES[err.code] : null;
    return zh && zh !== message ? [zh, message] : [message, ""];
  }

  // Fills `box` (which gets the classes "status error") with the error.
  function showError(box, prefix, err) {
    const [headline, detail] = errorParts(err);
    box.hidden = false;
    box.className = "status error";
    box.replaceChildren(
      el("div", null, el("div", { text: prefix + headline }), detail ? el("div", { class: "detail", text: detail }) : null),
    );
    return box;
  }

  function placeOf(c) {
    if (!c) return "";
    return `${c.source}:${c.line_start}-${c.line_end}`;
  }

  // ---------- report filter ----------

  async function loadDocuments() {
    try {
      const data = await getJSON(`${API}/documents`);
      const docs = Array.isArray(data.documents) ? data.documents : [];
      const wanted = new URLSearchParams(window.location.search).get("source");
      for (const doc of docs) {
        const label = doc.year ? `${doc.title}（${doc.year}）` : doc.title || doc.source;
        const option = el("option", { value: doc.source, text: label, title: doc.publisher || "" });
        sourceSelect.append(option);
      }
      if (wanted && docs.some((d) => d.source === wanted)) sourceSelect.value = wanted;
    } catch (err) {
      sourceSelect.title = "报告列表加载失败：" + errorParts(err).join(" ");
    }
  }

  // ---------- retrieval mode (optional; the server's default otherwise) ----------

  const MODE_LABELS = { hybrid: "混合检索", bm25: "关键词（BM25）", dense: "语义向量" };

  async function loadModes() {
    try {
      const health = await getJSON("healthz");
      const modes = Array.isArray(health.modes) ? health.modes : [];
      if (modes.length < 2) return; // nothing to choose
      for (const mode of modes) modeSelect.append(el("option", { value: mode, text: MODE_LABELS[mode] || mode }));
      const wanted = new URLSearchParams(window.location.search).get("mode");
      if (wanted && modes.includes(wanted)) modeSelect.value = wanted;
      $("mode-field").hidden = false;
    } catch (_) {
      /* keep the server's default */
    }
  }

  // ---------- asking ----------

  async function ask() {
    const q = question.value.trim();
    if (!q) {
      question.focus();
      showStatus("error", "请输入问题。");
      return;
    }
    if (askController) askController.abort();
    const controller = new AbortController();
    askController = controller;

    const source = sourceSelect.value || null;
    const mode = modeSelect.value || null;
    rememberInUrl(q, source, mode);
    closeViewer();
    askButton.disabled = true;
    result.setAttribute("aria-busy", "true");
    showStatus("loading", "正在检索报告并生成回答……");

    try {
      const data = await getJSON(`${API}/ask`, {
        method: "POST",
        headers: { "Content-Type": "application/json", Accept: "application/json" },
        body: JSON.stringify(mode ? { question: q, k: TOP_K, source, mode } : { question: q, k: TOP_K, source }),
        signal: controller.signal,
      });
      if (askController !== controller) return;
      hideStatus();
      renderAnswer(data);
    } catch (err) {
      if (err && err.name === "AbortError") return;
      if (askController !== controller) return;
      result.hidden = true;
      showError(statusBox, "出错了：", err);
    } finally {
      if (askController === controller) {
        askController = null;
        askButton.disabled = false;
        result.removeAttribute("aria-busy");
      }
    }
  }

  function rememberInUrl(q, source, mode) {
    const params = new URLSearchParams(window.location.search);
    params.set("q", q);
    if (source) params.set("source", source);
    else params.delete("source");
    if (mode) params.set("mode", mode);
    else params.delete("mode");
    try {
      history.replaceState(null, "", `${window.location.pathname}?${params}`);
    } catch (_) {
      /* file:// or sandboxed: not important */
    }
  }

  function renderAnswer(data) {
    currentSources = Array.isArray(data.sources) ? data.sources : [];
    const byMarker = new Map(currentSources.map((s) => [String(s.marker), s]));

    answerBox.replaceChildren();
    answerBox.classList.toggle("not-found", data.found === false);
    const text = typeof data.answer === "string" ? data.answer : "";
    // Split on [n]; markers that name a source become clickable, others stay text.
    const re = /\[(\d+)\]/g;
    let last = 0;
    let match;
    while ((match = re.exec(text)) !== null) {
      if (match.index > last) answerBox.append(text.slice(last, match.index));
      const src = byMarker.get(match[1]);
      if (src) {
        const title = src.citation ? `${src.citation.title} · ${placeOf(src.citation)}` : `来源 ${match[1]}`;
        answerBox.append(
          el("button", {
            type: "button",
            class: "cite",
            "data-marker": match[1],
            title: "查看原文：" + title,
            text: `[${match[1]}]`,
          }),
        );
      } else {
        answerBox.append(match[0]);
      }
      last = re.lastIndex;
    }
    if (last < text.length) answerBox.append(text.slice(last));

    // What the reports lack of the question, in words: on a refusal the words no report
    // mentions; on an answer the words its sources do not contain.
    const missing = Array.isArray(data.missing_terms) ? data.missing_terms : [];
    const absent = missing.filter((m) => m.missing_from === "collection").map((m) => m.term);
    const lacking = missing.filter((m) => m.missing_from === "evidence").map((m) => m.term);
    const notes = [];
    if (data.found === false && absent.length > 0) notes.push("报告中未提到：" + absent.join("、"));
    if (data.found !== false && lacking.length > 0) notes.push("来源段落未包含：" + lacking.join("、"));
    missingBox.textContent = notes.join(" · ");
    missingBox.hidden = notes.length === 0;

    const meta = [];
    if (typeof data.took_ms === "number") meta.push(`用时 ${data.took_ms.toFixed(1)} 毫秒`);
    if (data.mode) meta.push(MODE_LABELS[data.mode] || data.mode);
    if (data.generated_by) meta.push(data.generated_by === "extractive" ? "抽取式回答" : "由语言模型根据来源撰写");
    if (typeof data.confidence === "number") meta.push(`置信度 ${Math.round(data.confidence * 100)}%`);
    if (data.found !== false) meta.push(`${currentSources.length} 个来源`);
    else meta.push("可以换个说法，或在“报告”中选择全部报告再试。");
    metaBox.textContent = meta.join(" · ");

    // A refusal still shows the closest passages, labelled as possibly related.
    const suggestions = data.found === false && Array.isArray(data.suggestions) ? data.suggestions : [];
    const shown = currentSources.length > 0 ? currentSources : suggestions;
    if (suggestions.length > 0 && currentSources.length === 0) currentSources = suggestions;
    sourcesLabel.textContent = data.found === false ? "可能相关的段落" : "来源段落";
    sourcesList.replaceChildren(...shown.map(renderSource));
    sourcesLabel.hidden = shown.length === 0;
    sourcesList.hidden = shown.length === 0;
    result.hidden = false;
  }

  function renderSource(src) {
    const c = src.citation || {};
    const snippet = el("p", { class: "snippet" });
    // The server's snippet is already HTML-escaped with <b> around matched words.
    if (typeof src.snippet === "string" && src.snippet) snippet.innerHTML = src.snippet;
    else snippet.textContent = src.text || "";

    const open = el("button", { type: "button", class: "open", text: "查看原文" });
    open.addEventListener("click", () => openViewer(src));

    return el(
      "li",
      { class: "card", id: `source-${src.marker}`, "data-marker": src.marker },
      el(
        "div",
        { class: "card-head" },
        el("span", { class: "marker", text: `[${src.marker}]` }),
        el("span", { class: "title", text: c.title || c.source || src.id || "" }),
      ),
      el(
        "div",
        { class: "card-meta" },
        c.section ? el("span", { class: "section", text: c.section }) : null,
        el("code", { class: "loc", text: placeOf(c) }),
      ),
      snippet,
      el("div", { class: "card-actions" }, open),
    );
  }

  // ---------- span viewer ----------

  async function openViewer(src) {
    const c = src && src.citation;
    if (!c) return;
    if (viewController) viewController.abort();
    const controller = new AbortController();
    viewController = controller;

    for (const card of sourcesList.querySelectorAll(".card.active")) card.classList.remove("active");
    const card = $(`source-${src.marker}`);
    if (card) card.classList.add("active");

    viewer.hidden = false;
    document.body.classList.add("viewer-open");
    viewerTitle.textContent = c.title || c.source;
    viewerLoc.textContent = `[${src.marker}] ${placeOf(c)}`;
    viewerBody.replaceChildren(el("p", { class: "status loading" }, el("span", { class: "spinner" }), "正在加载原文……"));

    const url = `${API}/documents/${encodeURIComponent(c.source)}?start=${encodeURIComponent(c.char_start)}&end=${encodeURIComponent(c.char_end)}`;
    try {
      const span = await getJSON(url, { signal: controller.signal, headers: { Accept: "application/json" } });
      if (viewController !== controller) return;
      viewerTitle.textContent = span.title || c.title || c.source;
      const lines =
        span.line_start === span.line_end ? `第 ${span.line_start} 行` : `第 ${span.line_start}–${span.line_end} 行`;
      viewerLoc.replaceChildren(
        el("span", { class: "marker", text: `[${src.marker}]` }),
        " ",
        el("code", { text: span.source || c.source }),
        ` · ${lines}`,
        c.section ? ` · ${c.section}` : "",
      );
      const cited = el("mark", { class: "cited", text: span.text || "" });
      const text = el(
        "div",
        { class: "doc-text" },
        span.before ? el("span", { class: "context", text: span.before }) : null,
        cited,
        span.after ? el("span", { class: "context", text: span.after }) : null,
      );
      viewerBody.replaceChildren(text);
      cited.scrollIntoView({ block: "center" });
    } catch (err) {
      if (err && err.name === "AbortError") return;
      if (viewController !== controller) return;
      viewerBody.replaceChildren(showError(el("div", { role: "alert" }), "原文加载失败：", err));
    } finally {
      if (viewController === controller) viewController = null;
    }
  }

  function closeViewer() {
    if (viewController) {
      viewController.abort();
      viewController = null;
    }
    viewer.hidden = true;
    document.body.classList.remove("viewer-open");
    for (const card of sourcesList.querySelectorAll(".card.active")) card.classList.remove("active");
  }

  // ---------- events ----------

  form.addEventListener("submit", (e) => {
    e.preventDefault();
    ask();
  });

  question.addEventListener("keydown", (e) => {
    // Enter asks; Shift+Enter is a new line; never while an IME is composing
    // (Enter then confirms the Chinese candidate).
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing && e.keyCode !== 229) {
      e.preventDefault();
      ask();
    }
  });

  answerBox.addEventListener("click", (e) => {
    const target = e.target.closest(".cite");
    if (!target) return;
    const src = currentSources.find((s) => String(s.marker) === target.dataset.marker);
    if (src) openViewer(src);
  });

  $("viewer-close").addEventListener("click", closeViewer);
  document.addEventListener("keydown", (e) => {
    if (e.key === "Escape" && !viewer.hidden) closeViewer();
  });

  // ---------- start ----------

  const initial = new URLSearchParams(window.location.search).get("q");
  const documentsLoaded = Promise.all([loadDocuments(), loadModes()]);
  if (initial && initial.trim()) {
    question.value = initial;
    // Wait for the report list so a ?source= in the link applies to the first question.
    documentsLoaded.then(ask);
  } else {
    question.focus();
  }
})();
