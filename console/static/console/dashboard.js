/* The on-sale dashboard's live view (docs/console.md). No library and nothing fetched from
   the internet: it polls the dashboard's JSON every few seconds and redraws
   - every element with data-field="a.b.c" (a path into the JSON) as text,
   - every element with data-show-if / data-show-unless="a.b" as shown or hidden,
   - every table part with data-rows="path" from that list (or one object), its cells named
     by data-columns ("name" is text, "name@url" a link to row[url]),
   - the sales chart, as inline SVG,
   - the seat map, as one inline SVG per section, one square per seat.
   The seats' places (the layout) are asked once; after that each poll carries only a
   letter per seat, and the layout again only when its key says the map changed.
   Every word shown comes translated from the server (config.labels). */
(function () {
  "use strict";

  var SVG_NS = "http://www.w3.org/2000/svg";
  var configNode = document.getElementById("console-dashboard-config");
  if (!configNode) {
    return;
  }
  var config = JSON.parse(configNode.textContent);
  var labels = config.labels;

  var layout = null; // [[id, section, row, number, grade], ...] in map order
  var layoutKey = null;
  var seatRects = []; // one <rect> per seat, in layout order
  var seatStates = "";
  var timer = null;
  var inFlight = false;
  var stopped = false;

  function valueAt(data, path) {
    return path.split(".").reduce(function (value, key) {
      return value === null || value === undefined ? undefined : value[key];
    }, data);
  }

  function shown(value) {
    return value === null || value === undefined || value === "" ? "—" : String(value);
  }

  function svg(tag, attributes, parent) {
    var element = document.createElementNS(SVG_NS, tag);
    Object.keys(attributes).forEach(function (name) {
      element.setAttribute(name, attributes[name]);
    });
    if (parent) {
      parent.appendChild(element);
    }
    return element;
  }

  // --- Numbers and tables ---------------------------------------------------------------

  function fillFields(data) {
    document.querySelectorAll("[data-field]").forEach(function (element) {
      var value = valueAt(data, element.getAttribute("data-field"));
      if (value !== undefined) {
        element.textContent = shown(value);
      }
    });
    document.querySelectorAll("[data-show-if]").forEach(function (element) {
      element.hidden = !valueAt(data, element.getAttribute("data-show-if"));
    });
    document.querySelectorAll("[data-show-unless]").forEach(function (element) {
      element.hidden = !!valueAt(data, element.getAttribute("data-show-unless"));
    });
  }

  function cellFor(row, column) {
    var parts = column.split("@");
    var value = row[parts[0]];
    var cell = document.createElement("td");
    if (typeof value === "number") {
      cell.className = "console-num";
    }
    if (parts[1] && row[parts[1]]) {
      var link = document.createElement("a");
      link.href = row[parts[1]];
      link.textContent = shown(value);
      cell.appendChild(link);
    } else {
      cell.textContent = shown(value);
    }
    return cell;
  }

  function fillRows(data) {
    document.querySelectorAll("[data-rows]").forEach(function (body) {
      var found = valueAt(data, body.getAttribute("data-rows"));
      if (found === undefined) {
        return;
      }
      var rows = Array.isArray(found) ? found : [found];
      var columns = body.getAttribute("data-columns").split(" ");
      var lines = rows.map(function (row) {
        var line = document.createElement("tr");
        columns.forEach(function (column) {
          line.appendChild(cellFor(row, column));
        });
        return line;
      });
      if (!lines.length && body.hasAttribute("data-empty")) {
        var line = document.createElement("tr");
        var cell = document.createElement("td");
        cell.colSpan = columns.length;
        cell.textContent = body.getAttribute("data-empty");
        line.appendChild(cell);
        lines.push(line);
      }
      body.replaceChildren.apply(body, lines);
    });
  }

  // --- Sales per minute -----------------------------------------------------------------

  function drawChart(sales) {
    var box = document.getElementById("console-sales-chart");
    if (!box || !sales) {
      return;
    }
    var width = 720;
    var height = 170;
    var left = 34;
    var right = 6;
    var top = 8;
    var bottom = 20;
    var plotWidth = width - left - right;
    var plotHeight = height - top - bottom;
    var minutes = sales.minutes;
    var highest = Math.max(1, sales.max_tickets);
    var step = plotWidth / Math.max(1, minutes.length);
    var chart = svg("svg", {
      viewBox: "0 0 " + width + " " + height,
      role: "img",
      "aria-label": labels.chart,
    });
    svg("title", {}, chart).textContent = labels.chart;
    svg("line", { x1: left, y1: top, x2: width - right, y2: top }, chart);
    svg("line", {
      x1: left,
      y1: top + plotHeight,
      x2: width - right,
      y2: top + plotHeight,
    }, chart);
    svg("text", { x: left - 4, y: top + 4, "text-anchor": "end" }, chart).textContent =
      String(highest);
    svg("text", { x: left - 4, y: top + plotHeight, "text-anchor": "end" }, chart).textContent =
      "0";
    minutes.forEach(function (minute, index) {
      var x = left + index * step;
      var barHeight = (minute.tickets / highest) * plotHeight;
      // A full-height target per minute, so a minute without sales has a tooltip too.
      var hit = svg("rect", {
        class: "console-hit",
        x: x,
        y: top,
        width: step,
        height: plotHeight,
      }, chart);
      svg("title", {}, hit).textContent = minute.title;
      if (minute.tickets) {
        var bar = svg("rect", {
          class: "console-bar",
          x: x + step * 0.15,
          y: top + plotHeight - barHeight,
          width: step * 0.7,
          height: barHeight,
        }, chart);
        svg("title", {}, bar).textContent = minute.title;
      }
      if (index % 10 === 0 || index === minutes.length - 1) {
        svg("text", {
          x: x + step / 2,
          y: height - 6,
          "text-anchor": "middle",
        }, chart).textContent = minute.label;
      }
    });
    box.replaceChildren(chart);
  }

  // --- The seat map ---------------------------------------------------------------------

  var CELL = 10; // one seat's square and its gap, in SVG units
  var LABEL = 24; // room for the row numbers

  function sectionsOf(seats) {
    var sections = new Map();
    seats.forEach(function (seat, index) {
      var section = seat[1];
      var row = seat[2];
      if (!sections.has(section)) {
        sections.set(section, new Map());
      }
      var rows = sections.get(section);
      if (!rows.has(row)) {
        rows.set(row, []);
      }
      rows.get(row).push([index, seat[3]]);
    });
    return sections;
  }

  function buildSeatMap(seats) {
    var box = document.getElementById("console-seat-map");
    if (!box) {
      return;
    }
    layout = seats;
    seatRects = new Array(seats.length);
    seatStates = "";
    if (!seats.length) {
      var note = document.createElement("p");
      note.className = "help";
      note.textContent = labels.no_seats;
      box.replaceChildren(note);
      return;
    }
    // A big venue is drawn smaller, so that more sections stand side by side.
    var scale = seats.length > 8000 ? 0.7 : 1;
    var figures = [];
    sectionsOf(seats).forEach(function (rows, section) {
      var widest = 0;
      rows.forEach(function (places) {
        places.forEach(function (place) {
          widest = Math.max(widest, place[1]);
        });
      });
      var width = LABEL + widest * CELL;
      var height = rows.size * CELL;
      var figure = document.createElement("figure");
      figure.className = "console-section";
      var caption = document.createElement("figcaption");
      caption.textContent = section;
      figure.appendChild(caption);
      var map = svg("svg", {
        viewBox: "0 0 " + width + " " + height,
        width: width * scale,
        height: height * scale,
        role: "img",
        "aria-label": section,
      }, figure);
      var y = 0;
      rows.forEach(function (places, row) {
        svg("text", { x: LABEL - 4, y: y + CELL - 2, "text-anchor": "end" }, map).textContent =
          String(row);
        places.forEach(function (place) {
          seatRects[place[0]] = svg("rect", {
            x: LABEL + (place[1] - 1) * CELL,
            y: y,
            width: CELL - 2,
            height: CELL - 2,
            "data-seat": place[0],
          }, map);
        });
        y += CELL;
      });
      figures.push(figure);
    });
    box.replaceChildren.apply(box, figures);
  }

  function paintSeats(states) {
    for (var index = 0; index < seatRects.length; index += 1) {
      if (states[index] !== seatStates[index] && seatRects[index]) {
        seatRects[index].setAttribute("class", "s-" + states[index]);
      }
    }
    seatStates = states;
  }

  function showSeat(event) {
    var info = document.getElementById("console-seat-info");
    var index = event.target.getAttribute && event.target.getAttribute("data-seat");
    if (!info || index === null || index === undefined || !layout) {
      return;
    }
    var seat = layout[Number(index)];
    var state = labels.seat_states[seatStates[Number(index)]] || "";
    info.textContent = seat[1] + "-" + seat[2] + "-" + seat[3] + " · " + seat[4] + " · " + state;
  }

  // Returns whether the map could be painted; false when the layout must be asked again.
  function drawSeatMap(seatMap) {
    if (!seatMap) {
      return true;
    }
    if (seatMap.layout) {
      buildSeatMap(seatMap.layout);
      layoutKey = seatMap.key;
    }
    if (seatMap.key !== layoutKey) {
      return false;
    }
    paintSeats(seatMap.states);
    return true;
  }

  // --- Polling --------------------------------------------------------------------------

  // A failure already worded for the operator.
  function Shown(text) {
    this.text = text;
  }

  function failed(reason) {
    return labels.refresh_failed.replace("%(error)s", reason || "?");
  }

  function problem(text) {
    var element = document.getElementById("console-problem");
    if (element) {
      element.className = text ? "console-problem" : "";
      element.textContent = text || "";
    }
  }

  function render(data) {
    fillFields(data);
    fillRows(data);
    drawChart(data.sales);
    return drawSeatMap(data.seat_map);
  }

  function later(seconds) {
    if (!stopped && timer === null) {
      timer = window.setTimeout(poll, seconds * 1000);
    }
  }

  function poll() {
    timer = null;
    if (inFlight || stopped || document.hidden) {
      return; // a hidden tab costs the server nothing; it polls again once shown
    }
    inFlight = true;
    var url = new URL(config.data_url, window.location.href);
    if (layoutKey === null && document.getElementById("console-seat-map")) {
      url.searchParams.set("layout", "1");
    }
    fetch(url, {
      credentials: "same-origin",
      cache: "no-store",
      headers: { Accept: "application/json" },
    })
      .then(function (response) {
        var type = response.headers.get("Content-Type") || "";
        if (response.redirected || response.status === 403) {
          // The admin session ended (admin_view sends to the login page) or was narrowed.
          stopped = true;
          throw new Shown(labels.logged_out);
        }
        if (!response.ok || type.indexOf("application/json") === -1) {
          throw new Shown(failed("HTTP " + response.status));
        }
        return response.json();
      })
      .then(function (data) {
        problem("");
        if (!render(data)) {
          layoutKey = null; // the seat map changed: ask for its layout at once
          inFlight = false;
          poll();
          return;
        }
        inFlight = false;
        later(config.poll_seconds);
      })
      .catch(function (error) {
        problem(error instanceof Shown ? error.text : failed(error && error.message));
        inFlight = false;
        later(config.poll_seconds * 2);
      });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var map = document.getElementById("console-seat-map");
    if (map) {
      map.addEventListener("mouseover", showSeat);
    }
    document.addEventListener("visibilitychange", function () {
      if (!document.hidden && timer === null) {
        poll();
      }
    });
    poll();
  });
})();
