// Camus room client: a mesh video call over the server's signaling WebSocket.
// Plain JavaScript, no bundler. The protocol is the one of the Camus seed document:
// {sender, receiver, type, data}; "ground control" is the server, "room" everyone.
'use strict';

(() => {
  const section = document.getElementById('camus');
  const slug = section.dataset.room;
  const videos = document.getElementById('videos');
  const chat = document.getElementById('chat');
  const state = {
    id: null, // learnt from the first pong
    iceServers: [],
    peers: new Map(), // id -> {pc, polite, makingOffer, ignoreOffer, figure, username}
    media: null,
    names: new Map(),
  };
  // Observable by tests and by curious users: window.camus.
  window.camus = state;

  const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
  const socket = new WebSocket(`${scheme}//${location.host}/room/${encodeURIComponent(slug)}/ws`);

  function send(receiver, type, data) {
    if (socket.readyState === WebSocket.OPEN) {
      socket.send(JSON.stringify({ receiver, type, data }));
    }
  }

  function say(who, text) {
    const item = document.createElement('li');
    const name = document.createElement('b');
    name.textContent = who;
    item.append(name, document.createTextNode(` ${text}`));
    chat.append(item);
  }

  socket.addEventListener('open', () => {
    send('ground control', 'ping', Date.now());
    send('ground control', 'get-ice-servers');
  });
  socket.addEventListener('close', (event) => {
    say('Camus', `disconnected${event.reason ? `: ${event.reason}` : ''}`);
  });
  socket.addEventListener('message', async (event) => {
    let message;
    try {
      message = JSON.parse(event.data);
    } catch {
      return;
    }
    try {
      await handle(message);
    } catch (error) {
      console.error('camus:', message.type, error);
    }
  });

  async function handle({ sender, receiver, type, data }) {
    switch (type) {
      case 'pong':
        if (!state.id) {
          state.id = receiver;
          send('ground control', 'get-room-info');
        }
        break;
      case 'ping':
        send('ground control', 'pong', data);
        break;
      case 'ice-servers':
        state.iceServers = (data || []).map(({ urls, username, credential }) => ({
          urls, username, credential,
        }));
        break;
      case 'room-info':
        await roomInfo(data);
        break;
      case 'text':
        say(state.names.get(sender) || 'Major Tom', String(data));
        break;
      case 'offer':
      case 'answer':
        await description(sender, data);
        break;
      case 'icecandidate':
        await candidate(sender, data);
        break;
      case 'bye':
        if (sender !== 'ground control') {
          leave(sender);
        }
        break;
      case 'error':
        say('Camus', String(data));
        break;
      default:
        break;
    }
  }

  async function roomInfo({ clients }) {
    const present = new Set();
    for (const { id, username } of clients || []) {
      state.names.set(id, username);
      present.add(id);
      if (id === state.id || !state.id) continue;
      const peer = state.peers.get(id) || (await join(id));
      peer.caption.textContent = username;
    }
    for (const id of [...state.peers.keys()]) {
      if (!present.has(id)) leave(id);
    }
  }

  async function localMedia() {
    if (!state.media) {
      state.media = navigator.mediaDevices
        .getUserMedia({ video: true, audio: true })
        .then((stream) => {
          document.getElementById('local').srcObject = stream;
          return stream;
        })
        .catch((error) => {
          say('Camus', `no camera or microphone: ${error.message}`);
          return null;
        });
    }
    return state.media;
  }

  // Perfect negotiation: the polite peer (the lower id) yields when offers collide.
  async function join(id) {
    const pc = new RTCPeerConnection({ iceServers: state.iceServers });
    const figure = document.createElement('figure');
    const video = document.createElement('video');
    video.autoplay = true;
    video.playsInline = true;
    video.dataset.peer = id;
    const caption = document.createElement('figcaption');
    figure.append(video, caption);
    videos.append(figure);
    const peer = { pc, polite: state.id < id, makingOffer: false, ignoreOffer: false, figure, caption };
    state.peers.set(id, peer);

    pc.addEventListener('track', ({ streams: [stream] }) => {
      if (video.srcObject !== stream) video.srcObject = stream;
    });
    pc.addEventListener('icecandidate', ({ candidate }) => {
      if (candidate) send(id, 'icecandidate', candidate.toJSON());
    });
    pc.addEventListener('negotiationneeded', async () => {
      try {
        peer.makingOffer = true;
        await pc.setLocalDescription();
        send(id, pc.localDescription.type, pc.localDescription.toJSON());
      } finally {
        peer.makingOffer = false;
      }
    });
    const stream = await localMedia();
    if (stream && state.peers.get(id) === peer) {
      for (const track of stream.getTracks()) pc.addTrack(track, stream);
    }
    return peer;
  }

  async function description(sender, data) {
    const peer = state.peers.get(sender) || (await join(sender));
    const { pc } = peer;
    const collision = data.type === 'offer' && (peer.makingOffer || pc.signalingState !== 'stable');
    peer.ignoreOffer = !peer.polite && collision;
    if (peer.ignoreOffer) return;
    await pc.setRemoteDescription(data);
    if (data.type === 'offer') {
      await pc.setLocalDescription();
      send(sender, pc.localDescription.type, pc.localDescription.toJSON());
    }
  }

  async function candidate(sender, data) {
    const peer = state.peers.get(sender);
    if (!peer) return;
    try {
      await peer.pc.addIceCandidate(data);
    } catch (error) {
      if (!peer.ignoreOffer) throw error;
    }
  }

  function leave(id) {
    const peer = state.peers.get(id);
    if (!peer) return;
    peer.pc.close();
    peer.figure.remove();
    state.peers.delete(id);
  }

  document.getElementById('say').addEventListener('submit', (event) => {
    event.preventDefault();
    const input = document.getElementById('text');
    const text = input.value.trim();
    if (text) send('room', 'text', text);
    input.value = '';
  });
  document.getElementById('name').addEventListener('change', (event) => {
    send('ground control', 'profile', { username: event.target.value.trim() || 'Major Tom' });
  });
  window.addEventListener('pagehide', () => send('ground control', 'bye', Date.now()));
})();
