// A small WebGL viewer: flat-shaded triangles, drag to orbit, wheel to zoom, slow turn when idle.
class MeshViewer {
  constructor(canvas) {
    this.canvas = canvas;
    const gl = canvas.getContext("webgl", { preserveDrawingBuffer: true, antialias: true });
    if (!gl) throw new Error("WebGL is not available");
    this.gl = gl;
    this.program = this.link(`
      attribute vec3 position; attribute vec3 normal;
      uniform mat4 mvp; uniform mat3 rot; varying vec3 n;
      void main() { n = rot * normal; gl_Position = mvp * vec4(position, 1.0); }`, `
      precision mediump float; varying vec3 n;
      void main() {
        vec3 m = normalize(n); if (!gl_FrontFacing) m = -m;
        float light = 0.25 + 0.65 * max(dot(m, normalize(vec3(-0.4, 0.6, 0.7))), 0.0) + 0.15 * max(m.z, 0.0);
        gl_FragColor = vec4(min(vec3(0.62, 0.70, 0.86) * light, 1.0), 1.0);
      }`);
    this.yaw = 0.5; this.pitch = 0.35; this.distance = 3.2; this.count = 0; this.dragging = false;
    canvas.addEventListener("mousedown", (e) => { this.dragging = true; this.last = [e.clientX, e.clientY]; });
    window.addEventListener("mouseup", () => { this.dragging = false; });
    window.addEventListener("mousemove", (e) => {
      if (!this.dragging) return;
      this.yaw += (e.clientX - this.last[0]) * 0.01;
      this.pitch = Math.max(-1.5, Math.min(1.5, this.pitch + (e.clientY - this.last[1]) * 0.01));
      this.last = [e.clientX, e.clientY];
    });
    canvas.addEventListener("wheel", (e) => {
      e.preventDefault();
      this.distance = Math.max(1.2, Math.min(10, this.distance * (e.deltaY > 0 ? 1.1 : 0.9)));
    });
    const frame = () => { if (!this.dragging) this.yaw += 0.004; this.draw(); requestAnimationFrame(frame); };
    requestAnimationFrame(frame);
  }

  link(vertex, fragment) {
    const gl = this.gl, program = gl.createProgram();
    for (const [type, source] of [[gl.VERTEX_SHADER, vertex], [gl.FRAGMENT_SHADER, fragment]]) {
      const shader = gl.createShader(type);
      gl.shaderSource(shader, source);
      gl.compileShader(shader);
      gl.attachShader(program, shader);
    }
    gl.linkProgram(program);
    return program;
  }

  show(positions, indices) {
    // centred on the bounding box, scaled into the unit sphere; one vertex per corner (flat normals)
    let lo = [Infinity, Infinity, Infinity], hi = [-Infinity, -Infinity, -Infinity];
    for (let i = 0; i < positions.length; i += 3)
      for (let k = 0; k < 3; k++) { lo[k] = Math.min(lo[k], positions[i + k]); hi[k] = Math.max(hi[k], positions[i + k]); }
    const centre = lo.map((v, k) => (v + hi[k]) / 2);
    let radius = 1e-6;
    for (let i = 0; i < positions.length; i += 3)
      radius = Math.max(radius, Math.hypot(positions[i] - centre[0], positions[i + 1] - centre[1], positions[i + 2] - centre[2]));
    const data = new Float32Array(indices.length * 6);
    for (let f = 0; f < indices.length; f += 3) {
      const p = [0, 1, 2].map((j) => [0, 1, 2].map((k) => (positions[indices[f + j] * 3 + k] - centre[k]) / radius));
      const a = p[1].map((v, k) => v - p[0][k]), b = p[2].map((v, k) => v - p[0][k]);
      const n = [a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]];
      for (let j = 0; j < 3; j++) data.set([...p[j], ...n], (f + j) * 6);
    }
    const gl = this.gl;
    if (!this.buffer) this.buffer = gl.createBuffer();
    gl.bindBuffer(gl.ARRAY_BUFFER, this.buffer);
    gl.bufferData(gl.ARRAY_BUFFER, data, gl.STATIC_DRAW);
    this.count = indices.length;
    this.canvas.dataset.triangles = String(indices.length / 3);
  }

  draw() {
    const gl = this.gl;
    gl.viewport(0, 0, this.canvas.width, this.canvas.height);
    gl.clearColor(1, 1, 1, 1);
    gl.clear(gl.COLOR_BUFFER_BIT | gl.DEPTH_BUFFER_BIT);
    if (!this.count) return;
    gl.enable(gl.DEPTH_TEST);
    gl.useProgram(this.program);
    const cy = Math.cos(this.yaw), sy = Math.sin(this.yaw), cp = Math.cos(this.pitch), sp = Math.sin(this.pitch);
    // rotation (column-major): yaw about y, then pitch about x
    const rot = [cy, sy * sp, -sy * cp, 0, cp, sp, sy, -cy * sp, cy * cp];
    const f = 1 / Math.tan(0.5 * 0.6), near = 0.1, far = 100, d = this.distance;
    const a = (far + near) / (near - far), b = 2 * far * near / (near - far);
    const mvp = new Float32Array([
      f * rot[0], f * rot[1], a * rot[2], -rot[2],
      f * rot[3], f * rot[4], a * rot[5], -rot[5],
      f * rot[6], f * rot[7], a * rot[8], -rot[8],
      0, 0, -a * d + b, d]);
    gl.uniformMatrix4fv(gl.getUniformLocation(this.program, "mvp"), false, mvp);
    gl.uniformMatrix3fv(gl.getUniformLocation(this.program, "rot"), false, new Float32Array(rot));
    gl.bindBuffer(gl.ARRAY_BUFFER, this.buffer);
    for (const [name, offset] of [["position", 0], ["normal", 12]]) {
      const loc = gl.getAttribLocation(this.program, name);
      gl.enableVertexAttribArray(loc);
      gl.vertexAttribPointer(loc, 3, gl.FLOAT, false, 24, offset);
    }
    gl.drawArrays(gl.TRIANGLES, 0, this.count);
  }
}
