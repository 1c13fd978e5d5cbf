// The form: models from /api/models, one POST to /api/generate, the answer shown in the viewer.
const $ = (id) => document.getElementById(id);
const viewer = new MeshViewer($("viewer"));
let models = [];
// A server bound to anything but loopback wants its token: the address it printed carries it (?token=).
const token = new URLSearchParams(location.search).get("token");
const headers = token ? { "X-Wala-Token": token } : {};
const withToken = (url) => (url && token ? `${url}?token=${encodeURIComponent(token)}` : url);

function status(text, isError) {
  $("status").textContent = text;
  $("status").className = isError ? "error" : "";
}

function chooseModel() {
  const m = models.find((x) => x.name === $("model").value);
  if (!m) return;
  $("steps").placeholder = m.steps;
  $("scale").placeholder = m.scale;
  $("files").accept = m.formats.join(",");
  $("files").disabled = m.files === 0;
  $("condition").textContent = m.files === 0 ? "unconditional"
    : `${m.condition}: ${m.files} file${m.files > 1 ? "s" : ""} (${m.formats.join(" ")})`;
}

async function loadModels() {
  const answer = await fetch("/api/models", { headers });
  if (!answer.ok) throw new Error((await answer.json()).error);
  models = await answer.json();
  $("model").innerHTML = models.map((m) => `<option value="${m.name}">${m.name} (${m.source})</option>`).join("");
  chooseModel();
}

function decode(b64, Type) {
  const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  return new Type(bytes.buffer);
}

$("model").addEventListener("change", chooseModel);
$("form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const body = new FormData($("form"));
  status("generating…");
  $("generate").disabled = true;
  try {
    const answer = await fetch("/api/generate", { method: "POST", body, headers });
    const result = await answer.json();
    if (!answer.ok) { status(result.error || `error ${answer.status}`, true); return; }
    viewer.show(decode(result.mesh.positions, Float32Array), decode(result.mesh.indices, Uint32Array));
    $("preview").src = withToken(result.preview) || "";
    $("downloads").innerHTML = `<a href="${withToken(result.obj)}" download>OBJ</a>`
      + ` · <a href="${withToken(result.glb)}" download>GLB</a> · ${result.faces} faces`;
    status(`done in ${result.seconds} s`);
  } catch (err) {
    status(`error: ${err}`, true);
  } finally {
    $("generate").disabled = false;
  }
});
loadModels().catch((err) => status(`cannot list models: ${err}`, true));
