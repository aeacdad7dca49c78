// The rule builder: conditions as rows of path-op-value inside all/any/not
// groups, kept in sync with the "conditions" JSON field the form posts, and
// the action configuration's starting point per action type. No inline
// script anywhere (strict CSP); without this file the JSON fields still work.
(function () {
  "use strict";
  var OPS = ["eq", "ne", "in", "not_in", "gt", "gte", "lt", "lte", "exists",
             "contains", "starts_with", "ends_with"];
  var LABELS = {eq: "equals", ne: "differs from", in: "is one of", not_in: "is none of",
                gt: ">", gte: "≥", lt: "<", lte: "≤", exists: "exists",
                contains: "contains", starts_with: "starts with", ends_with: "ends with"};

  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    if (text !== undefined) { node.textContent = text; }
    return node;
  }

  // -- the model: {kind: "all"|"any"|"not", children: [...]} | {path, op, value}
  function fromJson(spec) {
    if (!spec || typeof spec !== "object" || Object.keys(spec).length === 0) {
      return {kind: "all", children: []};
    }
    if (Array.isArray(spec.all)) { return {kind: "all", children: spec.all.map(fromJson)}; }
    if (Array.isArray(spec.any)) { return {kind: "any", children: spec.any.map(fromJson)}; }
    if (spec.not) { return {kind: "not", children: [fromJson(spec.not)]}; }
    return {path: spec.path || "", op: spec.op || "eq",
            value: spec.value === undefined ? "" : spec.value};
  }

  function toJson(node) {
    if (node.kind === "not") {
      var inner = node.children.length === 1 ? toJson(node.children[0])
        : {all: node.children.map(toJson)};
      return {not: inner};
    }
    if (node.kind) {
      var out = {};
      out[node.kind] = node.children.map(toJson);
      return out;
    }
    var test = {path: node.path, op: node.op};
    if (node.op === "exists") {
      test.value = node.value !== false && node.value !== "false";
    } else {
      test.value = node.value;
    }
    return test;
  }

  // A typed value from the text box: JSON when it parses, lists for in/not_in.
  function parseValue(text, op) {
    var t = text.trim();
    if (op === "in" || op === "not_in") {
      if (t.charAt(0) === "[") { try { return JSON.parse(t); } catch (e) { /* as text */ } }
      return t === "" ? [] : t.split(",").map(function (s) { return parseValue(s, "eq"); });
    }
    if (t === "") { return ""; }
    try { return JSON.parse(t); } catch (e) { return t; }
  }

  function showValue(value) {
    return typeof value === "string" ? value : JSON.stringify(value);
  }

  function Editor(root, field) {
    this.root = root;
    this.field = field;
    this.load();
    var self = this;
    field.addEventListener("input", function () { self.load(true); });
  }

  Editor.prototype.load = function (quiet) {
    try {
      this.model = fromJson(this.field.value.trim() ? JSON.parse(this.field.value) : null);
      this.root.classList.remove("invalid");
    } catch (e) {
      if (quiet) { this.root.classList.add("invalid"); return; }
      this.model = {kind: "all", children: []};
    }
    this.render();
  };

  Editor.prototype.save = function () {
    this.field.value = JSON.stringify(toJson(this.model), null, 2);
  };

  Editor.prototype.changed = function (redraw) {
    this.save();
    if (redraw) { this.render(); }
  };

  Editor.prototype.render = function () {
    this.root.textContent = "";
    this.root.appendChild(this.group(this.model, null));
  };

  Editor.prototype.group = function (node, parent) {
    var self = this;
    var box = el("div", {"class": "cond-group " + node.kind});
    var head = el("div", {"class": "cond-head"});
    var kind = el("select", {"aria-label": "group kind"});
    [["all", "All of these"], ["any", "Any of these"], ["not", "None of these (not)"]]
      .forEach(function (k) {
        var option = el("option", {value: k[0]}, k[1]);
        if (k[0] === node.kind) { option.selected = true; }
        kind.appendChild(option);
      });
    kind.addEventListener("change", function () { node.kind = kind.value; self.changed(true); });
    head.appendChild(kind);
    if (!node.children.length) {
      head.appendChild(el("span", {"class": "muted small"},
        node.kind === "any" ? "matches nothing yet" : "matches every event"));
    }
    if (parent) {
      head.appendChild(this.removeButton(parent, node, "Remove group"));
    }
    box.appendChild(head);
    node.children.forEach(function (child) {
      box.appendChild(child.kind ? self.group(child, node) : self.row(child, node));
    });
    var tools = el("div", {"class": "cond-tools"});
    var addRow = el("button", {type: "button", "class": "small"}, "Add condition");
    addRow.addEventListener("click", function () {
      node.children.push({path: "data.", op: "eq", value: ""});
      self.changed(true);
      var inputs = box.querySelectorAll(":scope > .cond-row input.path");
      if (inputs.length) { inputs[inputs.length - 1].focus(); }
    });
    var addGroup = el("button", {type: "button", "class": "small"}, "Add group");
    addGroup.addEventListener("click", function () {
      node.children.push({kind: "any", children: []});
      self.changed(true);
    });
    tools.appendChild(addRow);
    tools.appendChild(addGroup);
    box.appendChild(tools);
    return box;
  };

  Editor.prototype.row = function (node, parent) {
    var self = this;
    var row = el("div", {"class": "cond-row"});
    var path = el("input", {type: "text", "class": "path", "aria-label": "path",
                            placeholder: "data.score"});
    path.value = node.path;
    path.addEventListener("input", function () { node.path = path.value.trim(); self.changed(); });
    var op = el("select", {"aria-label": "operator"});
    OPS.forEach(function (name) {
      var option = el("option", {value: name}, LABELS[name]);
      if (name === node.op) { option.selected = true; }
      op.appendChild(option);
    });
    var value = el("input", {type: "text", "class": "value", "aria-label": "value",
                             placeholder: "80, \"HIGH\", a,b for lists"});
    value.value = node.op === "exists" ? String(node.value !== false) : showValue(node.value);
    op.addEventListener("change", function () {
      node.op = op.value;
      node.value = parseValue(value.value, node.op);
      self.changed();
    });
    value.addEventListener("input", function () {
      node.value = parseValue(value.value, node.op);
      self.changed();
    });
    row.appendChild(path);
    row.appendChild(op);
    row.appendChild(value);
    row.appendChild(this.removeButton(parent, node, "Remove"));
    return row;
  };

  Editor.prototype.removeButton = function (parent, node, label) {
    var self = this;
    var button = el("button", {type: "button", "class": "small danger", "aria-label": label}, "×");
    button.addEventListener("click", function () {
      parent.children.splice(parent.children.indexOf(node), 1);
      self.changed(true);
    });
    return button;
  };

  // Another action type: its skeleton, keeping what was written for the
  // keys the new type also has (a title stays a title); keys only the old
  // type knew are dropped, since the new type would refuse them.
  function actionSkeletons(select, config, fields) {
    function parsed(text) {
      try { var v = JSON.parse(text); return v && typeof v === "object" && !Array.isArray(v) ? v : null; }
      catch (e) { return null; }
    }
    select.addEventListener("change", function () {
      var fresh = parsed(select.selectedOptions[0].dataset.skeleton || "{}") || {};
      var before = parsed(config.value) || {};
      var known = (fields[select.value] || []).map(function (f) { return f[0]; });
      Object.keys(before).forEach(function (key) {
        if (key in fresh || known.indexOf(key) >= 0) { fresh[key] = before[key]; }
      });
      config.value = JSON.stringify(fresh, null, 2);
    });
  }

  // The action's configuration as form fields (per built-in action type),
  // two-way with the JSON field, which stays what the form posts.
  function configFields(root, select, config) {
    var fields = JSON.parse(root.dataset.fields || "{}");
    function current() {
      try {
        var value = JSON.parse(config.value || "{}");
        return value && typeof value === "object" && !Array.isArray(value) ? value : null;
      } catch (e) { return null; }
    }
    function shown(value, kind) {
      if (value === undefined || value === null) { return ""; }
      return kind === "json" ? JSON.stringify(value) : String(value);
    }
    function read(input, kind) {
      var text = input.value;
      if (kind === "number") { return text.trim() === "" ? undefined : Number(text); }
      if (kind === "json") {
        if (text.trim() === "") { return undefined; }
        try { return JSON.parse(text); } catch (e) { return null; }  // null: not yet valid
      }
      return text === "" ? undefined : text;
    }
    function render() {
      root.textContent = "";
      var spec = fields[select.value] || [];
      var values = current() || {};
      spec.forEach(function (f) {
        var id = "cfg-" + f[0];
        var label = el("label", {"for": id}, f[1]);
        var input = f[2] === "textarea" || f[2] === "json"
          ? el("textarea", {id: id, rows: f[2] === "json" ? "2" : "3", "data-key": f[0]})
          : el("input", {id: id, type: f[2] === "number" ? "number" : "text", "data-key": f[0]});
        input.value = shown(values[f[0]], f[2]);
        input.addEventListener("input", function () {
          var now = current();
          if (now === null) { return; }  // the JSON field is being edited by hand
          var value = read(input, f[2]);
          if (value === null) { input.setAttribute("aria-invalid", "true"); return; }
          input.removeAttribute("aria-invalid");
          if (value === undefined) { delete now[f[0]]; } else { now[f[0]] = value; }
          config.value = JSON.stringify(now, null, 2);
        });
        root.appendChild(label);
        root.appendChild(input);
      });
    }
    config.addEventListener("input", function () {
      var values = current();
      if (values === null) { return; }
      root.querySelectorAll("[data-key]").forEach(function (input) {
        var f = (fields[select.value] || []).filter(function (x) { return x[0] === input.dataset.key; })[0];
        if (f && document.activeElement !== input) { input.value = shown(values[f[0]], f[2]); }
      });
    });
    select.addEventListener("change", render);  // after the skeleton is in place
    render();
  }

  document.addEventListener("DOMContentLoaded", function () {
    var root = document.getElementById("cond-editor");
    var field = document.getElementById("conditions");
    if (root && field) { new Editor(root, field); }
    var select = document.getElementById("action_type");
    var config = document.getElementById("config");
    var fieldsRoot = document.getElementById("config-fields");
    var fields = fieldsRoot ? JSON.parse(fieldsRoot.dataset.fields || "{}") : {};
    if (select && config) { actionSkeletons(select, config, fields); }
    if (fieldsRoot && select && config) { configFields(fieldsRoot, select, config); }
  });
})();
