// The tutorial page's behaviour (bench anchor): remember the last offset, retry sends,
// append one <li> per message and scroll after each.
let counter = 0;
const socket = io({ auth: { serverOffset: 0 }, ackTimeout: 10000, retries: 3 });
const form = document.getElementById('form');
const input = document.getElementById('input');
const messages = document.getElementById('messages');

form.addEventListener('submit', (e) => {
  e.preventDefault();
  if (input.value) {
    socket.emit('chat message', input.value, `${socket.id}-${counter++}`);
    input.value = '';
  }
});

socket.on('chat message', (msg, serverOffset) => {
  const item = document.createElement('li');
  item.textContent = msg;
  messages.appendChild(item);
  window.scrollTo(0, document.body.scrollHeight);
  socket.auth.serverOffset = serverOffset;
});
