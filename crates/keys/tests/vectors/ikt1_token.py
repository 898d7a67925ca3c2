# Independent re-implementation of the ikt1 sealed token (Python "cryptography"), used to
# cross-check the pinned vector in src/seal.rs (`pinned_token_vector`). Run: python3 ikt1_token.py
import base64, struct
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

def varint(v):
    out=b''
    while v>=0x80:
        out+=bytes([(v&0x7f)|0x80]); v>>=7
    return out+bytes([v])
def fld(n,wt,payload): return varint((n<<3)|wt)+payload
def s(n,x): x=x.encode() if isinstance(x,str) else x; return fld(n,2,varint(len(x))+x) if x else b''
def u(n,v): return fld(n,0,varint(v)) if v else b''
pt=(u(1,1)+s(2,"ims.example")+s(3,"bm9uY2U=")+s(4,"cid@host")+u(5,7)+s(6,"sip:alice@ims.example")
    +s(7,"alice@ims.example")+s(8,bytes([1]*16))+s(9,bytes([2]*16))+u(10,10000)+u(11,74000)+s(12,"AKAv1-MD5"))
secret=bytes(range(32))
key=HKDF(algorithm=hashes.SHA256(),length=32,salt=b"k1",info=b"ikt1 seal"+b"scscf-1"+b"pcscf-1").derive(secret)
def lp(b): return struct.pack(">I",len(b))+b
aad=lp(b"ikt1")+lp(b"k1")+lp(b"ims.example")+lp(b"bm9uY2U=")+lp(b"cid@host")+lp(struct.pack(">I",7))+lp(b"sip:a@b")
nonce=bytes(12)
ct=AESGCM(key).encrypt(nonce,pt,aad)
print("ikt1.k1."+base64.urlsafe_b64encode(nonce+ct).decode().rstrip("="))
