// The API reference page (/docs): renders /openapi.json. No library, no
// inline script or style (the page's Content-Security-Policy allows its own
// files only); every text of the description goes in as text, never as HTML.
"use strict";

(function () {
  const METHODS = ["get", "put", "post", "delete", "patch", "head", "options"];

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v !== undefined && v !== null) node.setAttribute(k, v);
    }
    for (const c of children.flat(Infinity)) {
      if (c === null || c === undefined || c === false) continue;
      node.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return node;
  }

  // A little Markdown: paragraphs, `code` and **bold**.
  function inline(text) {
    const out = [];
    const re = /`([^`]+)`|\*\*([^*]+)\*\*/g;
    let last = 0;
    let m;
    while ((m = re.exec(text))) {
      if (m.index > last) out.push(text.slice(last, m.index));
      out.push(m[1] !== undefined ? el("code", {}, m[1]) : el("strong", {}, m[2]));
      last = re.lastIndex;
    }
    if (last < text.length) out.push(text.slice(last));
    return out;
  }

  function markdown(text) {
    if (!text) return [];
    return text.split(/\n\s*\n/).map((p) => el("p", {}, inline(p.replace(/\s*\n\s*/g, " "))));
  }

  function anchor(kind, name) {
    return kind + "-" + name.replace(/[^A-Za-z0-9_-]+/g, "-");
  }

  function refName(ref) {
    return ref.replace("#/components/schemas/", "");
  }

  // A schema's type in a few words.
  function typeOf(schema) {
    if (!schema) return "any";
    if (schema.$ref) return refName(schema.$ref);
    for (const key of ["oneOf", "anyOf"]) {
      if (schema[key]) return schema[key].map(typeOf).join(" | ");
    }
    if (schema.allOf) return schema.allOf.map(typeOf).join(" & ");
    let t = Array.isArray(schema.type) ? schema.type.join(" | ") : schema.type || "any";
    if (t === "array") t = typeOf(schema.items) + "[]";
    if (schema.format) t += " (" + schema.format + ")";
    return t;
  }

  function constraints(schema) {
    if (!schema) return [];
    const out = [];
    if (schema.enum) out.push("one of " + schema.enum.map((v) => JSON.stringify(v)).join(", "));
    if (schema.pattern) out.push("pattern " + schema.pattern);
    if (schema.minLength !== undefined) out.push("≥ " + schema.minLength + " chars");
    if (schema.maxLength !== undefined) out.push("≤ " + schema.maxLength + " chars");
    if (schema.minimum !== undefined) out.push("≥ " + schema.minimum);
    if (schema.maximum !== undefined) out.push("≤ " + schema.maximum);
    if (schema.maxItems !== undefined) out.push("≤ " + schema.maxItems + " items");
    if (schema.examples && schema.examples.length) out.push("e.g. " + JSON.stringify(schema.examples[0]));
    return out;
  }

  // The referenced schema of `X`, `X[]` or `X | null`, if that is all it is.
  function single(schema) {
    if (!schema) return null;
    if (schema.$ref) return { name: refName(schema.$ref), suffix: "" };
    if (schema.items && schema.items.$ref) return { name: refName(schema.items.$ref), suffix: "[]" };
    const branches = schema.oneOf || schema.anyOf;
    if (branches && branches.length === 2) {
      const ref = branches.find((b) => b.$ref);
      if (ref && branches.some((b) => b.type === "null")) return { name: refName(ref.$ref), suffix: " | null" };
    }
    return null;
  }

  // A schema's description, or that of its one referenced branch.
  function describe(schema) {
    if (!schema) return undefined;
    if (schema.description) return schema.description;
    for (const b of schema.oneOf || schema.anyOf || []) {
      if (b.description) return b.description;
    }
    return undefined;
  }

  function typeCell(schema) {
    const cell = [];
    const ref = single(schema);
    if (ref) {
      cell.push(el("a", { href: "#" + anchor("schema", ref.name), class: "type mono" }, ref.name), el("span", { class: "type mono" }, ref.suffix));
    } else {
      cell.push(el("span", { class: "type mono" }, typeOf(schema)));
    }
    const c = constraints(schema);
    if (c.length) cell.push(el("div", { class: "constraint" }, c.join("; ")));
    return cell;
  }

  // A schema as a table of properties (objects), or its type; nested
  // objects and references open on demand.
  function renderSchema(spec, schema, depth) {
    if (!schema) return el("span", { class: "type" }, "any");
    if (depth > 8) return el("span", { class: "type" }, typeOf(schema));
    if (schema.$ref) {
      const name = refName(schema.$ref);
      const target = (spec.components.schemas || {})[name];
      return el(
        "details",
        {},
        el("summary", {}, el("a", { href: "#" + anchor("schema", name), class: "type mono" }, name)),
        el("div", { class: "schema" }, renderSchema(spec, target, depth + 1))
      );
    }
    const parts = [];
    parts.push(...markdown(schema.description));
    for (const key of ["oneOf", "anyOf", "allOf"]) {
      if (!schema[key]) continue;
      const word = key === "allOf" ? "All of:" : "One of:";
      parts.push(
        el("div", {}, word),
        el("ul", {}, schema[key].map((s) => el("li", {}, s.title ? el("strong", {}, s.title + ": ") : null, renderSchema(spec, s, depth + 1))))
      );
    }
    if (schema.properties) {
      const required = new Set(schema.required || []);
      const rows = Object.entries(schema.properties).map(([name, prop]) => {
        const nested = prop && !single(prop) && (prop.properties || prop.items || prop.oneOf || prop.anyOf || prop.allOf);
        return el(
          "tr",
          {},
          el("td", { class: "mono" }, name, required.has(name) ? el("span", { class: "required" }, "required") : null),
          el("td", {}, typeCell(prop)),
          el(
            "td",
            {},
            markdown(describe(prop)),
            nested
              ? el("details", {}, el("summary", {}, "fields"), el("div", { class: "schema" }, renderSchema(spec, prop.items || prop, depth + 1)))
              : null
          )
        );
      });
      parts.push(el("table", {}, el("thead", {}, el("tr", {}, el("th", {}, "Field"), el("th", {}, "Type"), el("th", {}, "Description"))), el("tbody", {}, rows)));
    } else if (schema.items) {
      parts.push(el("div", {}, "Array of:"), el("div", { class: "schema" }, renderSchema(spec, schema.items, depth + 1)));
    } else if (schema.additionalProperties && typeof schema.additionalProperties === "object") {
      parts.push(el("div", {}, "Map of names to:"), el("div", { class: "schema" }, renderSchema(spec, schema.additionalProperties, depth + 1)));
    } else if (!schema.oneOf && !schema.anyOf && !schema.allOf) {
      parts.push(el("div", {}, typeCell(schema)));
    }
    return el("div", {}, parts);
  }

  function renderContent(spec, content) {
    return Object.entries(content || {}).map(([media, body]) =>
      el("div", {}, el("div", { class: "media mono" }, media), body.schema ? renderSchema(spec, body.schema, 0) : null)
    );
  }

  function renderOperation(spec, path, method, op) {
    const id = anchor("op", method + path);
    const section = el(
      "section",
      { class: "op", id },
      el("h3", {}, el("span", { class: "method " + method }, method.toUpperCase()), el("span", { class: "mono" }, path), el("span", { class: "summary" }, op.summary || ""))
    );
    section.append(...markdown(op.description));
    if (op.security) {
      const options = op.security.map((req) => {
        const names = Object.keys(req);
        return names.length ? names.join(" + ") : "none needed";
      });
      section.append(el("h4", {}, "Authorization"), el("div", { class: "security" }, "One of: ", options.map((o, i) => [i ? ", " : "", el("code", {}, o)])));
    }
    if (op.parameters && op.parameters.length) {
      const rows = op.parameters.map((p) =>
        el(
          "tr",
          {},
          el("td", { class: "mono" }, p.name, p.required ? el("span", { class: "required" }, "required") : null),
          el("td", {}, p.in),
          el("td", {}, typeCell(p.schema)),
          el("td", {}, markdown(p.description || describe(p.schema)))
        )
      );
      section.append(el("h4", {}, "Parameters"), el("table", {}, el("thead", {}, el("tr", {}, el("th", {}, "Name"), el("th", {}, "In"), el("th", {}, "Type"), el("th", {}, "Description"))), el("tbody", {}, rows)));
    }
    if (op.requestBody) {
      section.append(el("h4", {}, "Request body"), ...markdown(op.requestBody.description), ...renderContent(spec, op.requestBody.content));
    }
    const responses = Object.entries(op.responses || {}).map(([status, r]) => {
      const ok = status < "400";
      const headers = Object.entries(r.headers || {}).map(([name, h]) => el("div", { class: "constraint" }, "Header ", el("code", {}, name), ": ", h.description || ""));
      const body = r.content ? renderContent(spec, r.content) : [];
      return el(
        "details",
        { open: ok ? "" : null },
        el("summary", {}, el("span", { class: "status " + (ok ? "ok" : "err") }, status), " ", inline(r.description || "")),
        el("div", { class: "schema" }, headers, body)
      );
    });
    section.append(el("h4", {}, "Responses"), ...responses);
    return section;
  }

  function render(spec) {
    const main = document.getElementById("main");
    const nav = document.getElementById("nav");
    main.replaceChildren();
    const info = spec.info || {};
    main.append(
      el("h1", {}, info.title || "API", " ", el("span", { class: "summary" }, info.version || "")),
      el("p", {}, "OpenAPI ", spec.openapi, ": ", el("a", { href: "/openapi.json" }, "/openapi.json"), " (load it into a client generator)."),
      ...markdown(info.description)
    );
    const tags = (spec.tags || []).map((t) => t.name);
    const byTag = new Map(tags.map((t) => [t, []]));
    for (const [path, item] of Object.entries(spec.paths || {})) {
      for (const method of METHODS) {
        const op = item[method];
        if (!op) continue;
        const tag = (op.tags && op.tags[0]) || "other";
        if (!byTag.has(tag)) byTag.set(tag, []);
        byTag.get(tag).push([path, method, op]);
      }
    }
    nav.replaceChildren(el("strong", {}, info.title || "API"));
    for (const [tag, ops] of byTag) {
      if (!ops.length) continue;
      const meta = (spec.tags || []).find((t) => t.name === tag) || {};
      const section = el("section", { class: "tag", id: anchor("tag", tag) }, el("h2", {}, tag), ...markdown(meta.description));
      const list = el("ul");
      for (const [path, method, op] of ops) {
        section.append(renderOperation(spec, path, method, op));
        list.append(el("li", {}, el("a", { href: "#" + anchor("op", method + path), title: op.summary || "" }, el("span", { class: "method " + method }, method.toUpperCase()), " ", path)));
      }
      main.append(section);
      nav.append(el("h2", {}, el("a", { href: "#" + anchor("tag", tag) }, tag)), list);
    }
    const schemas = (spec.components && spec.components.schemas) || {};
    const schemaSection = el("section", { class: "tag", id: "schemas" }, el("h2", {}, "Schemas"));
    const schemaList = el("ul");
    for (const name of Object.keys(schemas).sort()) {
      schemaSection.append(el("section", { class: "op", id: anchor("schema", name) }, el("h3", {}, el("span", { class: "mono" }, name)), renderSchema(spec, schemas[name], 1)));
      schemaList.append(el("li", {}, el("a", { href: "#" + anchor("schema", name) }, name)));
    }
    main.append(schemaSection);
    nav.append(el("h2", {}, el("a", { href: "#schemas" }, "Schemas")), schemaList);
    if (location.hash) {
      const target = document.getElementById(location.hash.slice(1));
      if (target) target.scrollIntoView();
    }
  }

  fetch("/openapi.json", { headers: { Accept: "application/json" } })
    .then((r) => {
      if (!r.ok) throw new Error("GET /openapi.json answered " + r.status);
      return r.json();
    })
    .then(render)
    .catch((e) => {
      const status = document.getElementById("status");
      status.className = "error";
      status.textContent = "Could not load the API description: " + e.message;
    });
})();
