// The operations console: a map of merchants and zones (our vector tiles), couriers as
// they move (console/couriers/stream/, Server-Sent Events) and live orders (console/data/,
// refreshed every REFRESH_MS), the revenue of the last 30 days, the top merchants, and, for
// an owner, its zones to draw and edit. Every script, style and tile comes from this
// server; a base map is drawn only when MAP_TILE_URL is set.
(function () {
  "use strict";

  // A test may set window.consoleRefreshMs before the page loads, to see what the stream
  // alone does.
  const REFRESH_MS = window.consoleRefreshMs || 2000;
  // Openings of the courier stream that may fail in a row before it is left for
  // STREAM_PAUSE_MS, the refresh alone moving the couriers meanwhile; an opening that
  // lasted STREAM_HEALTHY_MS was not a failure.
  const STREAM_FAILURES_MAX = 5;
  const STREAM_PAUSE_MS = 60000;
  const STREAM_HEALTHY_MS = 30000;
  const config = JSON.parse(document.getElementById("console-config").textContent);
  const ownMerchant = config.merchantId;

  function mine(feature) {
    // Tiles hold every merchant; an owner's console shows its own only.
    return config.operator || feature.get("id") === ownMerchant || feature.get("merchant_id") === ownMerchant;
  }

  const zoneStyle = new ol.style.Style({
    fill: new ol.style.Fill({ color: "rgba(42, 111, 151, 0.12)" }),
    stroke: new ol.style.Stroke({ color: "#2a6f97", width: 1 }),
  });
  const merchantStyle = new ol.style.Style({
    image: new ol.style.Circle({ radius: 5, fill: new ol.style.Fill({ color: "#e07a1f" }), stroke: new ol.style.Stroke({ color: "#fff", width: 1 }) }),
  });
  const courierStyle = new ol.style.Style({
    image: new ol.style.RegularShape({ points: 3, radius: 8, fill: new ol.style.Fill({ color: "#1b7a3a" }), stroke: new ol.style.Stroke({ color: "#fff", width: 1 }) }),
  });
  const orderStyles = {};
  for (const [status, color] of Object.entries({ confirmed: "#8e44ad", preparing: "#8e44ad", ready: "#c0392b", picked_up: "#2c3e50" })) {
    orderStyles[status] = new ol.style.Style({
      image: new ol.style.Circle({ radius: 4, fill: new ol.style.Fill({ color }), stroke: new ol.style.Stroke({ color: "#fff", width: 1 }) }),
    });
  }

  function tiles(layer, style) {
    return new ol.layer.VectorTile({
      source: new ol.source.VectorTile({ format: new ol.format.MVT(), url: `/tiles/${layer}/{z}/{x}/{y}.mvt`, maxZoom: 20 }),
      style: (feature) => (mine(feature) ? style : null),
    });
  }

  const unserved = new ol.source.Vector();
  const couriers = new ol.source.Vector();
  const orders = new ol.source.Vector();
  const ownZones = new ol.source.Vector();
  const layers = [];
  if (config.tileUrl) {
    layers.push(new ol.layer.Tile({ source: new ol.source.XYZ({ url: config.tileUrl }) }));
  }
  layers.push(new ol.layer.Heatmap({ source: unserved, blur: 20, radius: 12, weight: (f) => f.get("weight") }));
  layers.push(config.operator ? tiles("zones", zoneStyle) : new ol.layer.Vector({ source: ownZones, style: zoneStyle }));
  layers.push(tiles("merchants", merchantStyle));
  layers.push(new ol.layer.Vector({ source: orders, style: (f) => orderStyles[f.get("status")] }));
  layers.push(new ol.layer.Vector({ source: couriers, style: courierStyle }));

  const map = new ol.Map({
    target: "map",
    layers,
    view: new ol.View({ center: ol.proj.fromLonLat(config.center), zoom: 12 }),
  });
  const geojson = new ol.format.GeoJSON({ featureProjection: "EPSG:3857" });

  function place(source, id, geometry, properties) {
    const point = new ol.geom.Point(ol.proj.fromLonLat(geometry.coordinates));
    let feature = source.getFeatureById(id);
    if (feature === null) {
      feature = new ol.Feature(point);
      feature.setId(id);
      source.addFeature(feature);
    } else {
      feature.setGeometry(point);
    }
    feature.setProperties(properties);
  }

  function placeCourier(courier) {
    // The refresh's snapshot and the stream's moves cross on the way: a point older than
    // the one drawn is not drawn.
    const id = `courier-${courier.id}`;
    const at = Date.parse(courier.location_updated_at);
    const drawn = couriers.getFeatureById(id);
    if (drawn !== null && drawn.get("updatedAt") > at) return;
    place(couriers, id, courier.location, { name: courier.name, status: courier.status, updatedAt: at });
  }

  function keepOnly(source, ids) {
    for (const feature of source.getFeatures()) {
      if (!ids.has(feature.getId())) source.removeFeature(feature);
    }
  }

  function drawRevenue(rows) {
    const svg = document.getElementById("revenue-chart");
    const most = Math.max(1, ...rows.map((row) => Number(row.revenue)));
    const width = 300 / Math.max(rows.length, 1);
    svg.replaceChildren(
      ...rows.map((row, i) => {
        const bar = document.createElementNS("http://www.w3.org/2000/svg", "rect");
        const height = (Number(row.revenue) / most) * 110;
        bar.setAttribute("x", String(i * width + 1));
        bar.setAttribute("width", String(Math.max(width - 2, 1)));
        bar.setAttribute("y", String(118 - height));
        bar.setAttribute("height", String(height));
        const title = document.createElementNS("http://www.w3.org/2000/svg", "title");
        title.textContent = `${row.period}: ${row.revenue}`;
        bar.appendChild(title);
        return bar;
      })
    );
  }

  function listItems(id, items) {
    document.getElementById(id).replaceChildren(
      ...items.map((text) => {
        const item = document.createElement("li");
        item.textContent = text;
        return item;
      })
    );
  }

  async function refresh() {
    const answer = await fetch("/console/data/", { credentials: "same-origin" });
    if (!answer.ok) return;
    const data = await answer.json();
    // The couriers the caller's map shows now: the stream adds those that start to move
    // for it, the snapshot drops those that left it (an owner's courier done with its
    // orders).
    for (const courier of data.couriers) placeCourier(courier);
    keepOnly(couriers, new Set(data.couriers.map((c) => `courier-${c.id}`)));
    for (const order of data.orders) {
      place(orders, `order-${order.id}`, order.location, { status: order.status });
    }
    keepOnly(orders, new Set(data.orders.map((o) => `order-${o.id}`)));
    const most = Math.max(1, ...data.unserved.map((cell) => cell.requests));
    unserved.clear();
    unserved.addFeatures(
      data.unserved.map((cell) => new ol.Feature({
        geometry: new ol.geom.Point(ol.proj.fromLonLat(cell.location.coordinates)),
        weight: cell.requests / most,
      }))
    );
    drawRevenue(data.revenue);
    listItems("top-merchants", data.top_merchants.map((m) => `${m.name}: ${m.revenue}`));
    listItems("orders", data.orders.map((o) => `#${o.id} ${o.status}${o.courier_id ? ` (courier ${o.courier_id})` : ""}`));
    window.consoleData = data;
  }

  // --- an owner's zones -----------------------------------------------------------------

  function csrfToken() {
    const found = document.cookie.split("; ").find((part) => part.startsWith("csrftoken="));
    return found ? decodeURIComponent(found.split("=")[1]) : "";
  }

  function say(text, ok) {
    const message = document.getElementById("zone-message");
    message.textContent = text;
    message.className = ok ? "ok" : "error";
  }

  function refusal(body) {
    // The contract's 400: {"field": ["message", ...], ...} or {"detail": "..."}.
    if (body && typeof body === "object") {
      return Object.values(body).flat().join(" ");
    }
    return "The zone was refused.";
  }

  const zonesPath = `/api/v1/merchants/${ownMerchant}/delivery-zones/`;

  async function loadOwnZones() {
    // Every page of them: a merchant may have more zones than a page holds.
    const features = [];
    for (let page = 1, pages = 1; page <= pages; page += 1) {
      const answer = await fetch(`${zonesPath}?format=geojson&page_size=100&page=${page}`, { credentials: "same-origin" });
      if (!answer.ok) return;
      const collection = await answer.json();
      features.push(...geojson.readFeatures(collection));
      pages = collection.total_pages;
    }
    ownZones.clear();
    ownZones.addFeatures(features);
  }

  async function send(method, path, body) {
    const answer = await fetch(path, {
      method,
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrfToken() },
      body: JSON.stringify(body),
    });
    const data = await answer.json().catch(() => null);
    if (answer.ok) {
      say(method === "POST" ? `Zone ${data.id} saved.` : `Zone ${data.id} changed.`, true);
      await loadOwnZones();
    } else {
      say(refusal(data), false);
      await loadOwnZones();
    }
    return answer.status;
  }

  function area(feature) {
    // The map pans round the world without end: a zone drawn on a copy of it east or
    // west of the first has longitudes past ±180°, which the server refuses. It is sent
    // as the same place on the first copy, moved by whole worlds until its middle is
    // within ±180°; one still across ±180° then is the server's to refuse, saying why.
    const geometry = feature.getGeometry().clone();
    const world = ol.extent.getWidth(map.getView().getProjection().getExtent());
    const middle = ol.extent.getCenter(geometry.getExtent())[0];
    geometry.translate(-Math.round(middle / world) * world, 0);
    return geojson.writeGeometryObject(geometry, { decimals: 7 });
  }

  if (!config.operator) {
    loadOwnZones();
    const draft = new ol.source.Vector();
    map.addLayer(new ol.layer.Vector({ source: draft, style: zoneStyle }));
    let draw = null;
    document.getElementById("draw-zone").addEventListener("click", () => {
      if (draw !== null) return;
      draw = new ol.interaction.Draw({ source: draft, type: "Polygon" });
      draw.on("drawend", async (event) => {
        map.removeInteraction(draw);
        draw = null;
        window.zoneSaved = send("POST", zonesPath, {
          name: `Zone drawn ${new Date().toISOString().slice(0, 16)}`,
          area: area(event.feature),
          delivery_fee: document.getElementById("zone-fee").value,
          min_order_amount: document.getElementById("zone-min").value,
        });
        await window.zoneSaved;
        draft.clear();
      });
      map.addInteraction(draw);
    });
    const modify = new ol.interaction.Modify({ source: ownZones });
    modify.on("modifyend", (event) => {
      for (const feature of event.features.getArray()) {
        window.zoneSaved = send("PATCH", `${zonesPath}${feature.getId()}/`, { area: area(feature) });
      }
    });
    map.addInteraction(modify);
  }

  // --- couriers as they move -------------------------------------------------------------

  // One stream for the whole map (a stream per order would soon pass the six connections
  // a browser opens to a host). Each opening after the first reads the snapshot again:
  // the stream resumes from the last event seen (Last-Event-ID) only within its last
  // minute.
  function follow() {
    const stream = new EventSource("/console/couriers/stream/");
    let failures = 0;
    let openedAt = null;
    window.courierStream = stream;
    stream.addEventListener("open", () => {
      if (openedAt !== null) refresh();
      openedAt = Date.now();
    });
    stream.addEventListener("courier", (event) => placeCourier(JSON.parse(event.data)));
    stream.addEventListener("error", () => {
      if (openedAt !== null && Date.now() - openedAt > STREAM_HEALTHY_MS) failures = 0;
      failures += 1;
      // CLOSED: refused (a signed-out session); the browser will not try again by itself.
      if (failures >= STREAM_FAILURES_MAX || stream.readyState === EventSource.CLOSED) {
        stream.close();
        setTimeout(follow, STREAM_PAUSE_MS);
      }
    });
  }

  window.consoleMap = map;
  window.consoleSources = { couriers, orders, ownZones, unserved };
  refresh();
  setInterval(refresh, REFRESH_MS);
  follow();
})();
