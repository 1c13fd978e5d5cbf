// The form: models from /api/models; a job POSTed to /api/jobs, its progress polled, the mesh shown in the viewer.
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
  // m.prompt: "caption" (the model reads a prompt), "chain" (the server's text model draws its views), or null
  const uploads = m.files > 0 && m.prompt !== "caption";
  $("prompt").hidden = $("text").disabled = !m.prompt; // disabled fields are left out of the form
  $("text-options").hidden = $("text_steps").disabled = m.prompt !== "chain";
  $("upload").hidden = $("files").disabled = !uploads;
  $("files").accept = m.formats.join(",");
  const files = `${m.files} file${m.files > 1 ? "s" : ""} (${m.formats.join(" ")})`;
  $("condition").textContent = m.files === 0 ? "unconditional"
    : m.prompt === "caption" ? `${m.condition}: a prompt`
    : `${m.condition}: ${files}` + (m.prompt === "chain" ? ", or a prompt drawn as its views" : "");
  $("licence").textContent = `weights: ${m.licence}`;
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

function describe(job) {
  if (job.state === "queued") return `queued (${job.position - 1} ahead)`;
  const p = job.progress;
  return p.steps ? `${p.stage} step ${p.step}/${p.steps}` : `${p.stage}…`;
}

const pause = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
let current = null; // the job id being followed

async function follow(id) {
  for (;;) {
    const answer = await fetch(`/api/jobs/${id}`, { headers });
    const job = await answer.json();
    if (!answer.ok) throw new Error(job.error || `error ${answer.status}`);
    if (job.state === "done") return job.result;
    if (job.state !== "queued" && job.state !== "running") throw new Error(job.error || `job ${job.state}`);
    status(describe(job));
    $("progress").value = job.progress.steps ? job.progress.step / job.progress.steps : 0;
    await pause(250);
  }
}

$("model").addEventListener("change", chooseModel);
$("cancel").addEventListener("click", () => {
  if (current) fetch(`/api/jobs/${current}`, { method: "DELETE", headers });
});
$("form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const body = new FormData($("form"));
  if (body.get("text") === "") body.delete("text"); // no prompt: the files are the condition
  status("sending…");
  $("generate").disabled = true;
  $("cancel").disabled = false;
  try {
    const answer = await fetch("/api/jobs", { method: "POST", body, headers });
    const job = await answer.json();
    if (!answer.ok) { status(job.error || `error ${answer.status}`, true); return; }
    current = job.id;
    const result = await follow(job.id);
    const mesh = await (await fetch(withToken(result.viewer))).json();
    viewer.show(decode(mesh.positions, Float32Array), decode(mesh.indices, Uint32Array));
    $("progress").value = 1;
    $("preview").src = withToken(result.preview) || "";
    $("views").hidden = !result.views;
    $("views").src = withToken(result.views) || "";
    $("downloads").innerHTML = `<a href="${withToken(result.obj)}" download>OBJ</a>`
      + ` · <a href="${withToken(result.glb)}" download>GLB</a>`
      + (result.views ? ` · <a href="${withToken(result.views)}" download>views</a>` : "")
      + ` · ${result.faces} faces`;
    status(`done in ${result.seconds} s`);
  } catch (err) {
    status(`${err.message || err}`, true);
  } finally {
    current = null;
    $("generate").disabled = false;
    $("cancel").disabled = true;
  }
});
loadModels().catch((err) => status(`cannot list models: ${err}`, true));
