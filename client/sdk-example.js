// The smallest embedding of roomcast (docs/client-sdk.md): join the room named in the address
// with camera and microphone, show everyone else's video, list what arrives on the data channel.
import { RoomcastClient, openDevices } from './roomcast.js';

const params = new URLSearchParams(location.search);
const { stream } = await openDevices({ camera: true, mic: true });
const client = new RoomcastClient();
const videos = new Map(); // participant id -> <video>

client.on('status', ({ text }) => { document.getElementById('state').textContent = text; });
client.on('track', ({ participant, track }) => {
  let video = videos.get(participant);
  if (!video) {
    video = Object.assign(document.createElement('video'), { autoplay: true, playsInline: true });
    video.dataset.participant = participant;
    video.srcObject = new MediaStream();
    document.getElementById('videos').append(video);
    videos.set(participant, video);
  }
  video.srcObject.addTrack(track);
});
client.on('participant-left', ({ id }) => { videos.get(id)?.remove(); videos.delete(id); });
client.on('data', ({ from, payload }) => {
  const item = document.createElement('li');
  item.textContent = `${client.participants.get(from)?.name}: ${JSON.stringify(payload)}`;
  document.getElementById('messages').append(item);
});
client.join(params.get('room'), { name: params.get('name') || 'Guest', stream });
window.roomcast = client;
