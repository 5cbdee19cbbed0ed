/* The web chat, made a chat: forms answer in place, read-aloud, larger text.
   Plain ES5 for old Android WebViews (Zalo's and Facebook's in-app browsers): no framework,
   nothing from elsewhere. Without this file every form still works, a page at a time.
   Read-aloud uses the phone's own voice (speechSynthesis, vi-VN): nothing is sent anywhere;
   the buttons stay hidden where the phone has no Vietnamese voice. */
(function () {
  'use strict';
  var doc = document;
  var chat = doc.getElementById('chat');
  if (!chat || !window.XMLHttpRequest || !doc.querySelectorAll || !window.JSON) return;
  var body = doc.body;
  var data = function (name) { return body.getAttribute('data-' + name) || ''; };
  var pressed = null;
  var busy = false;

  function all(selector, root) {
    return Array.prototype.slice.call((root || doc).querySelectorAll(selector));
  }

  function up(node, test) {
    while (node && node !== doc) {
      if (test(node)) return node;
      node = node.parentNode;
    }
    return null;
  }

  function randomId() {
    var bytes = new Uint8Array(16);
    var crypto = window.crypto || window.msCrypto;
    if (crypto && crypto.getRandomValues) crypto.getRandomValues(bytes);
    else for (var i = 0; i < 16; i++) bytes[i] = Math.floor(Math.random() * 256);
    var out = '';
    for (var j = 0; j < 16; j++) out += ('0' + bytes[j].toString(16)).slice(-2);
    return out;
  }

  function encode(form, button) {
    var pairs = [];
    all('input', form).forEach(function (input) {
      if (input.name) pairs.push([input.name, input.value]);
    });
    if (button && button.name) pairs.push([button.name, button.value]);
    return pairs.map(function (p) {
      return encodeURIComponent(p[0]) + '=' + encodeURIComponent(p[1]);
    }).join('&');
  }

  function bubble(className, text) {
    var node = doc.createElement('article');
    node.className = 'msg ' + className;
    var p = doc.createElement('p');
    p.appendChild(doc.createTextNode(text));
    node.appendChild(p);
    return node;
  }

  /* --- read aloud --------------------------------------------------------------------- */
  var speech = window.speechSynthesis;
  var voice = null;
  var speaking = null;

  function findVoice() {
    if (!speech || !window.SpeechSynthesisUtterance) return;
    var voices = speech.getVoices() || [];
    for (var i = 0; i < voices.length && !voice; i++) {
      if (/^vi/i.test(voices[i].lang || '')) voice = voices[i];
    }
    // The buttons, and the line on the first page that tells of them.
    if (voice) all('.say').forEach(function (b) { b.hidden = false; });
  }

  function spoken(message) {
    var img = message.querySelector('img');
    var text = img ? img.alt : (message.querySelector('.text') || message).textContent;
    // Emoji and bullets are read out as their names: left out.
    return text.replace(/[\uD800-\uDFFF]|[\u2190-\u2BFF\uFE0F\u200D]/g, ' ')
      .replace(/•/g, ', ').replace(/\s+/g, ' ');
  }

  function say(button) {
    var message = up(button, function (n) { return n.classList && n.classList.contains('msg'); });
    var again = speaking === button;
    speech.cancel();
    if (speaking) speaking.textContent = data('listen');
    speaking = null;
    if (again || !message) return;
    var utterance = new window.SpeechSynthesisUtterance(spoken(message));
    utterance.lang = 'vi-VN';
    utterance.voice = voice;
    utterance.rate = 0.9;
    utterance.onend = utterance.onerror = function () {
      if (speaking === button) { button.textContent = data('listen'); speaking = null; }
    };
    speaking = button;
    button.textContent = data('listening');
    speech.speak(utterance);
  }

  /* --- larger text -------------------------------------------------------------------- */
  function resize(form) {
    var root = doc.documentElement;
    var big = !root.classList.contains('big');
    root.classList.toggle('big', big);
    doc.cookie = 'chat_size=' + (big ? 'big' : 'normal') +
      '; path=/chat; max-age=31536000; samesite=lax';
    var button = form.querySelector('button');
    button.textContent = data(big ? 'smaller' : 'bigger');
    button.setAttribute('aria-pressed', big ? 'true' : 'false');
    button.value = big ? 'normal' : 'big';
  }

  /* --- the chat ----------------------------------------------------------------------- */
  function send(form, button) {
    if (busy) return;
    busy = true;
    var ask = form.querySelector('input[name=text]');
    var mine = bubble('me', ask ? ask.value : (button ? button.textContent : ''));
    var wait = bubble('bot wait', data('waiting'));
    chat.appendChild(mine);
    chat.appendChild(wait);
    if (button) button.disabled = true;
    var request = new XMLHttpRequest();
    request.open('POST', form.getAttribute('action'));
    request.setRequestHeader('Content-Type', 'application/x-www-form-urlencoded');
    request.setRequestHeader('X-Chat', '1');
    request.onreadystatechange = function () {
      if (request.readyState !== 4) return;
      busy = false;
      chat.removeChild(wait);
      var answer = null;
      try { answer = JSON.parse(request.responseText); } catch (e) { answer = null; }
      if (!answer || !answer.html) {
        chat.removeChild(mine);
        if (button) button.disabled = false;
        if (request.status === 403) { form.submit(); return; }  // a stale page: a new one
        chat.appendChild(bubble('bot notice', data('offline')));
        return;
      }
      form.querySelector('input[name=nonce]').value = randomId();
      if (answer.discard) chat.removeChild(mine);
      all('.turn', chat).forEach(function (turn) {
        turn.className += ' spent';
        all('.options button', turn).forEach(function (b) { b.disabled = true; });
      });
      var holder = doc.createElement('div');
      holder.innerHTML = answer.html;
      var turn = holder.firstElementChild || holder.firstChild;
      chat.appendChild(turn);
      if (ask) ask.value = '';
      var footer = doc.querySelector('.bottom');
      if (footer) footer.hidden = !answer.started;
      findVoice();
      var first = (mine.parentNode ? mine : turn);
      if (first.scrollIntoView) first.scrollIntoView();
    };
    request.send(encode(form, button));
  }

  doc.addEventListener('click', function (event) {
    var button = up(event.target, function (n) { return n.tagName === 'BUTTON'; });
    if (!button) return;
    if (button.classList.contains('say')) { say(button); return; }
    pressed = button.type === 'submit' ? button : null;
  }, true);

  doc.addEventListener('submit', function (event) {
    var form = event.target;
    if (form.classList.contains('size')) { event.preventDefault(); resize(form); return; }
    if (!form.hasAttribute('data-chat')) return;
    event.preventDefault();
    var button = pressed && pressed.form === form ? pressed : form.querySelector('button');
    pressed = null;
    send(form, button);
  }, true);

  doc.documentElement.className += ' js';
  if (speech) {
    findVoice();
    if ('onvoiceschanged' in speech) speech.onvoiceschanged = findVoice;
  }
})();
