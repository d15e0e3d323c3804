// A minimal OpenSpace Web GUI streaming view: joins the instance's WebRTC session through the
// signaling server and shows its video. Plain JavaScript, no bundler.
//
// Its address carries everything, in the fragment (never sent to a server, never stored):
//   index.html#/streaming?id=<instance>&peer=<browser peer id>&token=<signaling token>
//                        [&signaling=<ws URL>]   (default: ws://<this host>:8443)
'use strict';

(() => {
  const query = new URLSearchParams(location.hash.split('?')[1] || '');
  const instance = Number(query.get('id'));
  const peer = Number(query.get('peer'));
  const token = query.get('token') || '';
  const signaling = query.get('signaling') || `ws://${location.hostname}:8443`;
  const video = document.getElementById('stream');
  const status = document.getElementById('status');
  const state = { pc: null, registered: false, session: false, error: null };
  window.openspace = state; // observable by tests

  const say = (text) => { status.textContent = text; };
  const socket = new WebSocket(signaling);
  const send = (type, content) =>
    socket.send(JSON.stringify({ type, caller_id: peer, content }));

  function connection() {
    if (state.pc) state.pc.close();
    const pc = new RTCPeerConnection();
    pc.addEventListener('track', ({ streams: [stream], track }) => {
      video.srcObject = stream || new MediaStream([track]);
    });
    pc.addEventListener('icecandidate', ({ candidate }) => {
      if (candidate) send('ICE', candidate.toJSON());
    });
    pc.addEventListener('connectionstatechange', () => say(`Stream ${pc.connectionState}`));
    state.pc = pc;
    return pc;
  }

  socket.addEventListener('open', () => {
    socket.send(JSON.stringify({ type: 'REGISTER', caller_id: peer, token }));
  });
  socket.addEventListener('close', () => say('Signaling closed'));
  socket.addEventListener('message', async ({ data }) => {
    if (data === 'REGISTER') {
      state.registered = true;
      say(`Waiting for OpenSpace ${instance}…`);
      send('SESSION', instance);
      return;
    }
    if (data === 'SESSION_OK') {
      state.session = true;
      return;
    }
    let message;
    try {
      message = JSON.parse(data);
    } catch {
      return;
    }
    try {
      if (message.type === 'SDP' && message.content.type === 'offer') {
        const pc = connection();
        await pc.setRemoteDescription(message.content);
        await pc.setLocalDescription(await pc.createAnswer());
        send('SDP', pc.localDescription.toJSON());
      } else if (message.type === 'ICE' && state.pc) {
        await state.pc.addIceCandidate(message.content);
      } else if (message.type === 'SESSION_END') {
        say('The session ended');
      } else if (message.type === 'ERROR') {
        state.error = message.content;
        say(`Error: ${message.content}`);
      }
    } catch (error) {
      state.error = String(error);
      say(`Error: ${error}`);
    }
  });
})();
